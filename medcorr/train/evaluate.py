"""Detector metrics on labelled notes, with the official MEDIQA-CORR flag / sentence definitions."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from medcorr.detector import NotePrediction
from medcorr.finding import ERROR_TYPES
from medcorr.train.data import LabelledNote


def detection_metrics(notes: Sequence[LabelledNote], predictions: Sequence[NotePrediction],
                      threshold: float) -> dict:
    """Flag accuracy, sentence accuracy (a correct -1 counts), localisation and per-type recall."""
    flags = np.array([p.score >= threshold for p in predictions])
    gold = np.array([n.has_error for n in notes])
    predicted_sentence = np.array([p.suspect if f else -1 for p, f in zip(predictions, flags)])
    gold_sentence = np.array([n.error_sentence for n in notes])
    error_notes = gold
    localised = np.array([p.suspect == n.error_sentence for p, n in zip(predictions, notes)])
    ranks = np.array([localisation_rank(p, n.error_sentence) for p, n in zip(predictions, notes)])
    per_type = {}
    for error_type in ERROR_TYPES:
        members = np.array([n.error_type == error_type for n in notes])
        if members.any():
            per_type[error_type.medec_name] = {
                "n": int(members.sum()),
                "flag_recall": float(flags[members].mean()),
                "sentence_recall": float((predicted_sentence == gold_sentence)[members].mean()),
                "localisation": float(localised[members].mean()),
            }
    scores = np.array([p.score for p in predictions])
    return {
        "n": len(notes),
        "threshold": float(threshold),
        "flag_accuracy": float((flags == gold).mean()),
        "sentence_accuracy": float((predicted_sentence == gold_sentence).mean()),
        "localisation": float(localised[error_notes].mean()) if error_notes.any() else float("nan"),
        **{f"localisation_top{k}": float((ranks[error_notes] < k).mean()) if error_notes.any() else float("nan")
           for k in (1, 2, 3)},
        "auc": roc_auc(scores, gold),
        "per_type": per_type,
    }


def localisation_rank(prediction: NotePrediction, sentence: int) -> int:
    """0-based rank of ``sentence`` in the localisation distribution (ties broken by sentence order);
    a large number when the sentence is out of range (a clean note's -1)."""
    if sentence < 0 or sentence >= prediction.location.size:
        return 1 << 30
    order = np.argsort(-prediction.location, kind="stable")
    return int(np.flatnonzero(order == sentence)[0])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half; nan when one class is absent."""
    positives, negatives = scores[labels], scores[~labels]
    if positives.size == 0 or negatives.size == 0:
        return float("nan")
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (positives.size * negatives.size))


def best_threshold(notes: Sequence[LabelledNote], predictions: Sequence[NotePrediction]) -> float:
    """The verdict threshold that maximises flag accuracy on these notes (midpoint between scores)."""
    scores = np.array(sorted({p.score for p in predictions}))
    if scores.size == 0:
        return 0.5
    candidates = np.concatenate([[scores[0] - 1e-6], (scores[:-1] + scores[1:]) / 2, [scores[-1] + 1e-6]])
    gold = np.array([n.has_error for n in notes])
    values = np.array([p.score for p in predictions])
    accuracy = [((values >= t) == gold).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def precision_recall_curve(notes: Sequence[LabelledNote], predictions: Sequence[NotePrediction],
                           thresholds: Sequence[float]) -> list[dict]:
    """Flag precision / recall at each threshold (for the model card's triage trade-off)."""
    gold = np.array([n.has_error for n in notes])
    values = np.array([p.score for p in predictions])
    rows = []
    for t in thresholds:
        flagged = values >= t
        tp = int((flagged & gold).sum())
        rows.append({
            "threshold": float(t),
            "precision": tp / int(flagged.sum()) if flagged.any() else float("nan"),
            "recall": tp / int(gold.sum()) if gold.any() else float("nan"),
            "flagged_share": float(flagged.mean()),
        })
    return rows


#: The scored variant a validation record prefers (the one the runtime loads), then the others.
VALIDATION_VARIANTS: tuple[str, ...] = ("onnx_int8", "onnx_fp32", "torch_fp32")


def validation_record(cv_summary: dict, data: str = "") -> dict:
    """The ``validation`` block of a model's metadata from a ``medcorr cv`` summary (``cv.json``).

    It records the cross-validated verdict AUC (mean over folds) that decides whether the detector's verdict
    head may flag notes (:data:`medcorr.evidence.DETECTOR_AUC_FLOOR`), and the top-k localisation.
    """
    mean, std = cv_summary.get("mean", {}), cv_summary.get("std", {})
    variant = next((v for v in VALIDATION_VARIANTS if f"{v}.auc" in mean), None)
    if variant is None:
        raise ValueError("the cross-validation summary has no verdict AUC")
    record = {
        "verdict_auc": mean[f"{variant}.auc"],
        "verdict_auc_std": std.get(f"{variant}.auc"),
        "flag_accuracy": mean.get(f"{variant}.flag_accuracy"),
        "variant": variant,
        "folds": cv_summary.get("folds"),
        "seed": cv_summary.get("seed"),
        "method": (f"grouped {cv_summary.get('folds')}-fold cross-validation of the training recipe"
                   f"{' on ' + data if data else ''}, {variant}, mean over folds"),
    }
    for k in (1, 2, 3):
        value = mean.get(f"{variant}.localisation_top{k}")
        if value is not None:
            record[f"localisation_top{k}"] = value
    return record
