"""MEDIQA-CORR 2024 scoring of a submission against a MEDEC gold file.

Definitions (those of the official evaluation script, with its known bugs fixed):

* **Error-flag accuracy** and **error-sentence accuracy** are computed over all gold texts; a text with no
  (valid) prediction counts as wrong, and a correct ``-1`` sentence id counts as a hit.
* **Correction**: double quotes are removed from both sides (the official script does this because of
  inconsistencies in the references) and whitespace runs collapse to one space. Per text: reference and
  prediction both ``NA`` -> credit 1 in every composite score; exactly one ``NA``, or no prediction -> 0;
  neither ``NA`` -> a *scored pair*. ROUGE-1/2/L F come from the ``rouge`` package
  (``Rouge().get_scores(hyp, ref)``; a side with no words after its sentence split scores 0 instead of
  crashing). BERTScore F1 (``microsoft/deberta-xlarge-mnli``, rescaled with the baseline) and BLEURT-20 are
  computed only from local copies the user names; every value is clipped to [0, 1].
* **Aggregate** of a scored pair = mean of the available metrics among ROUGE-1 F, BERTScore and BLEURT.
  For each metric and for the aggregate, ``mean_scored`` is the mean over scored pairs and ``composite`` =
  (sum over scored pairs + number of both-``NA`` texts) / number of gold texts.

Fixed bugs of the official script: labels read as floats (``1.0`` against ``1``) because empty rows made
pandas read the columns as floats; empty rows counted as texts; ``re.sub`` with swapped arguments, which
crashed on a backslash in a submitted sentence; text ids with uppercase letters rejected.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from medcorr.medec.io import (
    NA,
    MedecRecord,
    Submission,
    SubmissionLine,
    normalize_space,
)

#: The official BERTScore model and the layer bert_score uses for it.
BERTSCORE_MODEL = "microsoft/deberta-xlarge-mnli"
BERTSCORE_LAYERS = 40
#: The official BLEURT checkpoint.
BLEURT_CHECKPOINT = "BLEURT-20"

ROUGE_METRICS: tuple[str, ...] = ("rouge1_f", "rouge2_f", "rougeL_f")
#: The metrics the official aggregate averages, when available.
AGGREGATE_METRICS: tuple[str, ...] = ("rouge1_f", "bertscore_f1", "bleurt")
METRIC_LABELS: dict[str, str] = {
    "rouge1_f": "ROUGE-1 F",
    "rouge2_f": "ROUGE-2 F",
    "rougeL_f": "ROUGE-L F",
    "bertscore_f1": "BERTScore F1",
    "bleurt": "BLEURT-20",
    "aggregate": "Aggregate",
}


class MetricUnavailable(RuntimeError):
    """A requested model-based metric cannot be computed (package missing, path wrong)."""


def clean_correction(text: str | None) -> str:
    """A correction as the scorer compares it: quotes removed, whitespace collapsed, ``NA`` for none."""
    if text is None:
        return NA
    cleaned = normalize_space(text.replace('"', ""))
    return cleaned if cleaned else NA


# ----------------------------------------------------------------------------------------- metrics


def rouge_f(hypothesis: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F of one pair with the ``rouge`` package; 0 for a side with no words to score."""
    from rouge import Rouge

    try:
        scores = Rouge().get_scores(hypothesis, reference)[0]
    except (ValueError, RecursionError):
        return {name: 0.0 for name in ROUGE_METRICS}
    return {
        "rouge1_f": float(scores["rouge-1"]["f"]),
        "rouge2_f": float(scores["rouge-2"]["f"]),
        "rougeL_f": float(scores["rouge-l"]["f"]),
    }


def _check_bertscore_model(path: Path) -> None:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MetricUnavailable(f"BERTScore model {path} has no config.json (expected a copy of {BERTSCORE_MODEL})")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if config.get("model_type") != "deberta" or int(config.get("num_hidden_layers", 0)) != 48:
        raise MetricUnavailable(
            f"BERTScore model {path} is not {BERTSCORE_MODEL} (model_type={config.get('model_type')!r}, "
            f"num_hidden_layers={config.get('num_hidden_layers')!r}); the official metric needs that model"
        )


def bertscore_f1(candidates: Sequence[str], references: Sequence[str], model_path: str | Path) -> list[float]:
    """Rescaled BERTScore F1 with a local copy of ``microsoft/deberta-xlarge-mnli`` (layer 40).

    Uses the baseline file bert_score ships for that model. Raises :class:`MetricUnavailable` when
    ``bert_score`` is not installed, the path is not that model, or the baseline file is missing.
    """
    path = Path(model_path)
    if not path.is_dir():
        raise MetricUnavailable(f"BERTScore model directory not found: {path}")
    _check_bertscore_model(path)
    try:
        import bert_score
    except ImportError:
        raise MetricUnavailable("BERTScore needs the bert-score package: pip install bert-score") from None
    baseline = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{BERTSCORE_MODEL}.tsv"
    if not baseline.is_file():
        raise MetricUnavailable(f"bert_score has no rescale baseline for {BERTSCORE_MODEL} ({baseline})")
    if not candidates:
        return []
    _, _, f1 = bert_score.score(
        list(candidates),
        list(references),
        model_type=str(path),
        num_layers=BERTSCORE_LAYERS,
        lang="en",
        rescale_with_baseline=True,
        baseline_path=str(baseline),
    )
    return [float(value) for value in f1.tolist()]


def bleurt_scores(candidates: Sequence[str], references: Sequence[str], checkpoint: str | Path) -> list[float]:
    """BLEURT scores with a local BLEURT-20 checkpoint. Raises :class:`MetricUnavailable` when the
    ``bleurt`` package is not installed or the checkpoint directory does not exist."""
    path = Path(checkpoint)
    if not path.is_dir():
        raise MetricUnavailable(f"BLEURT checkpoint directory not found: {path}")
    try:
        from bleurt import score as bleurt_score
    except ImportError:
        raise MetricUnavailable(
            "BLEURT needs the bleurt package (pip install git+https://github.com/google-research/bleurt)"
        ) from None
    if not candidates:
        return []
    scorer = bleurt_score.BleurtScorer(str(path))
    return [float(value) for value in scorer.score(references=list(references), candidates=list(candidates))]


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _clip(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


# ------------------------------------------------------------------------------------------ results


@dataclass
class MetricResult:
    """One correction metric: computed or not (with the reason), its means and what it ran with."""

    name: str
    computed: bool
    mean_scored: float | None = None
    composite: float | None = None
    reason: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        data: dict[str, Any] = {"computed": self.computed}
        if self.computed:
            data["mean_scored"] = self.mean_scored
            data["composite"] = self.composite
        if self.reason:
            data["reason"] = self.reason
        if self.source:
            data["source"] = self.source
        return data


@dataclass
class TypeRow:
    """Per-error-type counts: texts, correct flags (recall for error types) and correct sentence ids."""

    error_type: str
    texts: int
    flag_correct: int
    sentence_correct: int

    @property
    def flag_recall(self) -> float:
        """Share of the type's texts with the right flag."""
        return self.flag_correct / self.texts if self.texts else 0.0

    @property
    def sentence_recall(self) -> float:
        """Share of the type's texts with the right sentence id."""
        return self.sentence_correct / self.texts if self.texts else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "type": self.error_type,
            "texts": self.texts,
            "flag_correct": self.flag_correct,
            "flag_recall": self.flag_recall,
            "sentence_correct": self.sentence_correct,
            "sentence_recall": self.sentence_recall,
        }


@dataclass
class Baselines:
    """Majority-class baselines of a gold file, one per detection metric.

    ``flag``: every text gets the most common gold ``Error Flag`` (1 = "always error" on MEDEC-MS val).
    ``sentence``: every text gets the most common gold ``Error Sentence ID`` (-1 = "always no error" there).
    """

    flag_value: int
    flag_accuracy: float
    sentence_value: int
    sentence_accuracy: float

    @staticmethod
    def name_of_flag(value: int) -> str:
        """``always error`` / ``always no error``."""
        return "always error" if value == 1 else "always no error"

    @staticmethod
    def name_of_sentence(value: int) -> str:
        """``always no error`` for -1, else ``always sentence N``."""
        return "always no error" if value == -1 else f"always sentence {value}"

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "flag": {
                "name": self.name_of_flag(self.flag_value),
                "error_flag": self.flag_value,
                "accuracy": self.flag_accuracy,
            },
            "sentence": {
                "name": self.name_of_sentence(self.sentence_value),
                "error_sentence_id": self.sentence_value,
                "accuracy": self.sentence_accuracy,
            },
        }


@dataclass
class ScoreResult:
    """Everything ``medec score`` reports."""

    texts: int
    predicted: int
    missing: int
    unknown_ids: int
    invalid_lines: int
    duplicate_ids: int
    flag_accuracy: float
    sentence_accuracy: float
    pairs: dict[str, int]
    metrics: dict[str, MetricResult]
    aggregate_metrics: list[str]
    aggregate: MetricResult
    per_type: list[TypeRow]
    baselines: Baselines
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """One JSON object (``medec score --json``)."""
        return {
            "texts": self.texts,
            "predicted": self.predicted,
            "missing_predictions": self.missing,
            "unknown_ids": self.unknown_ids,
            "invalid_lines": self.invalid_lines,
            "duplicate_ids": self.duplicate_ids,
            "error_flag_accuracy": self.flag_accuracy,
            "error_sentence_accuracy": self.sentence_accuracy,
            "correction": {
                "pairs": dict(self.pairs),
                "metrics": {name: result.to_dict() for name, result in self.metrics.items()},
                "aggregate": {"metrics": list(self.aggregate_metrics), **self.aggregate.to_dict()},
            },
            "per_type": [row.to_dict() for row in self.per_type],
            "majority_baselines": self.baselines.to_dict(),
            "warnings": list(self.warnings),
        }


# ------------------------------------------------------------------------------------------ scoring


def check_gold(records: Sequence[MedecRecord]) -> None:
    """Raise ValueError unless every record has a flag, a sentence id and a corrected sentence."""
    if not records:
        raise ValueError("the gold file has no texts")
    for record in records:
        if record.error_flag is None or record.error_sentence_id is None or record.corrected_sentence is None:
            raise ValueError(f"gold row {record.row} ({record.text_id}) lacks a label")
        if record.error_flag not in (0, 1):
            raise ValueError(f"gold row {record.row} ({record.text_id}) has error flag {record.error_flag}")


def majority_baselines(gold: Sequence[MedecRecord]) -> Baselines:
    """The majority-class baselines (ties go to the smaller value)."""
    check_gold(gold)
    flags = Counter(record.error_flag for record in gold)
    sentences = Counter(record.error_sentence_id for record in gold)
    flag_value = min(flags, key=lambda value: (-flags[value], value))
    sentence_value = min(sentences, key=lambda value: (-sentences[value], value))
    return Baselines(
        flag_value=int(flag_value),
        flag_accuracy=flags[flag_value] / len(gold),
        sentence_value=int(sentence_value),
        sentence_accuracy=sentences[sentence_value] / len(gold),
    )


def baseline_submissions(gold: Sequence[MedecRecord]) -> dict[str, list[SubmissionLine]]:
    """Two full constant submissions, to score like any run.

    ``always-no-error``: ``0 -1 NA`` everywhere. ``always-error``: flag 1 and, for every text, the same
    sentence id: the most common gold error sentence id among error texts (ties: the smaller); the
    corrected sentence is that sentence of the text unchanged, or ``NA`` when the text has no sentence with
    that id (or the file no ``Sentences``).
    """
    check_gold(gold)
    ids = Counter(record.error_sentence_id for record in gold if record.error_flag == 1)
    common = min(ids, key=lambda value: (-ids[value], value)) if ids else 0
    always_error = []
    for record in gold:
        sentence = record.sentence_by_id(common)
        always_error.append(SubmissionLine(record.text_id, 1, common, sentence.text if sentence else None))
    return {
        "always-no-error": [SubmissionLine(record.text_id, 0, -1, None) for record in gold],
        "always-error": always_error,
    }


ModelMetric = Callable[[Sequence[str], Sequence[str]], list[float]]


def score_submission(
    gold: Sequence[MedecRecord],
    submission: Submission,
    *,
    bertscore_model: str | Path | None = None,
    bleurt_checkpoint: str | Path | None = None,
) -> ScoreResult:
    """Score ``submission`` against labeled ``gold`` records (see the module docstring for definitions).

    Raises ValueError for a gold file without labels and :class:`MetricUnavailable` when a model-based
    metric was asked for but cannot be computed.
    """
    check_gold(gold)
    total = len(gold)
    predictions = submission.lines
    gold_ids = {record.text_id for record in gold}

    flag_hits = sentence_hits = 0
    type_counts: dict[str, list[int]] = {}
    both_na = one_na = missing = 0
    pair_refs: list[str] = []
    pair_hyps: list[str] = []
    for record in gold:
        line = predictions.get(record.text_id)
        flag_ok = line is not None and line.error_flag == record.error_flag
        sentence_ok = line is not None and line.error_sentence_id == record.error_sentence_id
        flag_hits += flag_ok
        sentence_hits += sentence_ok
        key = record.error_type if record.error_flag == 1 and record.error_type else (
            "no error" if record.error_flag == 0 else "unknown type"
        )
        counts = type_counts.setdefault(key, [0, 0, 0])
        counts[0] += 1
        counts[1] += flag_ok
        counts[2] += sentence_ok

        reference = clean_correction(record.corrected_sentence)
        if line is None:
            missing += 1
            continue
        hypothesis = clean_correction(line.corrected_sentence)
        if reference == NA and hypothesis == NA:
            both_na += 1
        elif reference == NA or hypothesis == NA:
            one_na += 1
        else:
            pair_refs.append(reference)
            pair_hyps.append(hypothesis)

    scored = len(pair_refs)
    per_pair: dict[str, list[float]] = {name: [] for name in ROUGE_METRICS}
    for hypothesis, reference in zip(pair_hyps, pair_refs):
        for name, value in rouge_f(hypothesis, reference).items():
            per_pair[name].append(_clip(value))

    metrics: dict[str, MetricResult] = {}

    def summarise(name: str, values: list[float], source: str | None = None) -> MetricResult:
        return MetricResult(
            name=name,
            computed=True,
            mean_scored=sum(values) / scored if scored else None,
            composite=(sum(values) + both_na) / total,
            source=source,
        )

    for name in ROUGE_METRICS:
        metrics[name] = summarise(name, per_pair[name], f"rouge {_version('rouge')} (Rouge().get_scores)")

    model_metrics: list[tuple[str, str | Path | None, ModelMetric, str, str]] = [
        ("bertscore_f1", bertscore_model, bertscore_f1, "--bertscore-model", f"{BERTSCORE_MODEL}, rescaled"),
        ("bleurt", bleurt_checkpoint, bleurt_scores, "--bleurt-checkpoint", BLEURT_CHECKPOINT),
    ]
    for name, location, function, option, official in model_metrics:
        if location is None:
            metrics[name] = MetricResult(
                name, computed=False, reason=f"not computed: no {option} given (official: {official})"
            )
            continue
        values = function(pair_hyps, pair_refs, location)
        if len(values) != scored:
            raise MetricUnavailable(f"{name}: got {len(values)} scores for {scored} pairs")
        per_pair[name] = [_clip(value) for value in values]
        metrics[name] = summarise(name, per_pair[name], str(location))

    used = [name for name in AGGREGATE_METRICS if metrics[name].computed]
    aggregate_values = [sum(per_pair[name][i] for name in used) / len(used) for i in range(scored)]
    aggregate = summarise("aggregate", aggregate_values, "mean of " + ", ".join(METRIC_LABELS[n] for n in used))

    order = {"no error": 0, "unknown type": 2}
    per_type = [
        TypeRow(name, *counts)
        for name, counts in sorted(type_counts.items(), key=lambda item: (order.get(item[0], 1), item[0]))
    ]
    unknown = sorted(set(predictions) - gold_ids)
    warnings = []
    if missing:
        warnings.append(f"{missing} gold text(s) have no valid prediction (scored as wrong)")
    if unknown:
        warnings.append(f"{len(unknown)} predicted id(s) are not in the gold file (ignored)")
    if submission.invalid:
        first = submission.invalid[0]
        warnings.append(
            f"{len(submission.invalid)} invalid submission line(s) skipped (first: line {first[0]}: {first[1]})"
        )
    if submission.duplicates:
        warnings.append(f"{len(submission.duplicates)} duplicate id(s) in the submission (the last line wins)")
    return ScoreResult(
        texts=total,
        predicted=total - missing,
        missing=missing,
        unknown_ids=len(unknown),
        invalid_lines=len(submission.invalid),
        duplicate_ids=len(submission.duplicates),
        flag_accuracy=flag_hits / total,
        sentence_accuracy=sentence_hits / total,
        pairs={"scored": scored, "both_na": both_na, "one_na": one_na, "missing": missing},
        metrics=metrics,
        aggregate_metrics=used,
        aggregate=aggregate,
        per_type=per_type,
        baselines=majority_baselines(gold),
        warnings=warnings,
    )


# ------------------------------------------------------------------------------------------ output


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def format_text(result: ScoreResult) -> str:
    """Human-readable report for the terminal."""
    out = [
        f"texts: {result.texts}  predicted: {result.predicted}  missing: {result.missing}  "
        f"unknown ids: {result.unknown_ids}  invalid lines: {result.invalid_lines}",
        f"Error flag accuracy:      {result.flag_accuracy:.4f}",
        f"Error sentence accuracy:  {result.sentence_accuracy:.4f}",
        "Correction (pairs: {scored} scored, {both_na} both NA, {one_na} one NA, {missing} missing):".format(
            **result.pairs
        ),
        f"  {'metric':<14} {'mean(scored)':>12} {'composite':>10}",
    ]
    for name, metric in [*result.metrics.items(), ("aggregate", result.aggregate)]:
        label = METRIC_LABELS[name]
        if metric.computed:
            out.append(f"  {label:<14} {_fmt(metric.mean_scored):>12} {_fmt(metric.composite):>10}")
        else:
            out.append(f"  {label:<14} {metric.reason}")
    out.append("  aggregate = mean of " + ", ".join(METRIC_LABELS[n] for n in result.aggregate_metrics))
    out.append("Per error type (texts, flag recall, sentence recall):")
    for row in result.per_type:
        out.append(
            f"  {row.error_type:<16} {row.texts:>5} {row.flag_recall:>8.4f} ({row.flag_correct})"
            f" {row.sentence_recall:>8.4f} ({row.sentence_correct})"
        )
    base = result.baselines
    out.append(
        f"Majority baselines: flag accuracy {base.flag_accuracy:.4f} ({base.name_of_flag(base.flag_value)}), "
        f"sentence accuracy {base.sentence_accuracy:.4f} ({base.name_of_sentence(base.sentence_value)})"
    )
    out.extend(f"warning: {warning}" for warning in result.warnings)
    return "\n".join(out) + "\n"


def format_markdown(result: ScoreResult, title: str | None = None) -> str:
    """A Markdown report (metrics table, per-type table, baselines) for the README."""
    used = ", ".join(METRIC_LABELS[n] for n in result.aggregate_metrics)
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| Metric | Score | Composite |",
        "| --- | ---: | ---: |",
        f"| Error flag accuracy | {result.flag_accuracy:.4f} | |",
        f"| Error sentence accuracy | {result.sentence_accuracy:.4f} | |",
    ]
    for name, metric in [*result.metrics.items(), ("aggregate", result.aggregate)]:
        label = METRIC_LABELS[name] + (f" ({used})" if name == "aggregate" else "")
        if metric.computed:
            lines.append(f"| {label} | {_fmt(metric.mean_scored)} | {_fmt(metric.composite)} |")
        else:
            lines.append(f"| {label} | {_escape_md(metric.reason or 'not computed')} | |")
    pairs = result.pairs
    lines += [
        "",
        f"{result.texts} texts; correction pairs: {pairs['scored']} scored, {pairs['both_na']} both NA "
        f"(credited in the composite), {pairs['one_na']} with one NA (0), {pairs['missing']} missing (0). "
        "Score = mean over scored pairs; composite = (sum over scored pairs + both-NA texts) / texts.",
        "",
        "| Error type | Texts | Flag recall | Sentence recall |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in result.per_type:
        lines.append(
            f"| {row.error_type} | {row.texts} | {row.flag_recall:.4f} ({row.flag_correct}) | "
            f"{row.sentence_recall:.4f} ({row.sentence_correct}) |"
        )
    base = result.baselines
    lines += [
        "",
        "| Majority baseline | Value |",
        "| --- | ---: |",
        f"| Flag accuracy, {base.name_of_flag(base.flag_value)} | {base.flag_accuracy:.4f} |",
        f"| Sentence accuracy, {base.name_of_sentence(base.sentence_value)} | {base.sentence_accuracy:.4f} |",
    ]
    return "\n".join(lines) + "\n"


def _escape_md(text: str) -> str:
    return re.sub(r"([|])", r"\\\1", text)
