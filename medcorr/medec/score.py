"""MEDIQA-CORR 2024 scoring of a submission against a MEDEC gold file.

Definitions (those of the official evaluation script, ``mediqa-corr-2024-eval-script-2-all-metrics.py``,
with its known bugs fixed):

* **Error-flag accuracy** and **error-sentence accuracy** are computed over all gold texts; a text with no
  (valid) prediction counts as wrong, and a correct ``-1`` sentence id counts as a hit.
* **Correction**: a prediction with error flag 0 counts as ``NA`` whatever it writes (the official script
  enforces this). Double quotes are removed and whitespace runs collapse to one space, on both sides (the
  official script strips the quotes around the prediction only; removing them from the references too drops
  stray quotes there, e.g. the reference ``" Labor was induced.`` of MEDEC-MS validation). Per text:
  reference and prediction both ``NA`` -> credit 1 in every composite score; exactly one ``NA``, or no
  prediction -> 0; neither ``NA`` -> a *scored pair*. ROUGE-1/2/L F come from the ``rouge`` package
  (``Rouge().get_scores(hyp, ref)``; a side with no words after its sentence split scores 0 instead of
  crashing). BERTScore F1 (``microsoft/deberta-xlarge-mnli``, layer 40, rescaled with bert_score's
  baseline) and BLEURT-20 are computed only from local copies the user names; every value is clipped to
  [0, 1]. A BERTScore computed with another local model is reported as *not official* (layer, rescaling
  stated) and kept out of the aggregate.
* **Aggregate** of a scored pair = mean of ROUGE-1 F, BERTScore F1 and BLEURT-20. When one of them is not
  computed (or not official), the aggregate is the mean of the others and is marked *partial*, with the
  missing metrics and why: it is then not comparable with published aggregate scores. For each metric and
  for the aggregate, ``mean_scored`` is the mean over scored pairs and ``composite`` = (sum over scored pairs
  + number of both-``NA`` texts) / number of gold texts.

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
from typing import Any, Sequence

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
#: What to install for each scoring package (ROUGE is a runtime dependency of medcorr).
ROUGE_INSTALL = "pip install rouge==1.0.1 (a medcorr dependency; reinstall medcorr)"
BERTSCORE_INSTALL = "pip install 'medcorr[scoring]'"
BLEURT_INSTALL = "pip install git+https://github.com/google-research/bleurt (TensorFlow)"

ROUGE_METRICS: tuple[str, ...] = ("rouge1_f", "rouge2_f", "rougeL_f")
#: The metrics the official aggregate averages.
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
    """A requested metric cannot be computed (package missing, path wrong)."""


def clean_correction(text: str | None) -> str:
    """A correction as the scorer compares it: quotes removed, whitespace collapsed, ``NA`` for none."""
    if text is None:
        return NA
    cleaned = normalize_space(text.replace('"', ""))
    return cleaned if cleaned else NA


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a ``None`` entry in sys.modules, or a broken package
        return False


# ----------------------------------------------------------------------------------------- metrics


def _require_rouge() -> None:
    """Raise :class:`MetricUnavailable` with what to install when the ``rouge`` package is missing."""
    try:
        import rouge  # noqa: F401
    except ImportError:
        raise MetricUnavailable(f"ROUGE needs the rouge package: {ROUGE_INSTALL}") from None


def rouge_f(hypothesis: str, reference: str) -> dict[str, float]:
    """ROUGE-1/2/L F of one pair with the ``rouge`` package; 0 for a side with no words to score.

    Raises :class:`MetricUnavailable` when the ``rouge`` package is not installed.
    """
    _require_rouge()
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


@dataclass(frozen=True)
class BertScoreSetup:
    """How BERTScore runs with a local model: which layer, which rescale baseline, official or not.

    ``official`` is true for a copy of ``microsoft/deberta-xlarge-mnli`` (DeBERTa, 48 layers): layer 40 and
    the rescale baseline bert_score ships for it, as the official script. Any other local encoder runs
    with its last layer and without rescaling (bert_score has baselines only for named hub models), and
    ``note`` says so.
    """

    model: Path
    official: bool
    num_layers: int
    baseline: Path | None
    note: str


def _read_config(path: Path) -> dict[str, Any]:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise MetricUnavailable(
            f"BERTScore model {path} has no config.json (expected a local copy of {BERTSCORE_MODEL})"
        )
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MetricUnavailable(f"BERTScore model {path}: cannot read config.json ({error})") from None


def bertscore_setup(model_path: str | Path) -> BertScoreSetup:
    """Check a local BERTScore model and the ``bert_score`` package before anything is computed.

    Raises :class:`MetricUnavailable` when the directory or its ``config.json`` is missing, ``bert_score``
    is not installed, or the rescale baseline of the official model is missing from ``bert_score``.
    """
    path = Path(model_path)
    if not path.is_dir():
        raise MetricUnavailable(f"BERTScore model directory not found: {path}")
    config = _read_config(path)
    try:
        import bert_score
    except ImportError:
        raise MetricUnavailable(f"BERTScore needs the bert-score package: {BERTSCORE_INSTALL}") from None
    model_type = config.get("model_type")
    try:
        layers = int(config.get("num_hidden_layers", 0))
    except (TypeError, ValueError):
        layers = 0
    if model_type == "deberta" and layers == 48:
        baseline = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{BERTSCORE_MODEL}.tsv"
        if not baseline.is_file():
            raise MetricUnavailable(f"bert_score has no rescale baseline for {BERTSCORE_MODEL} ({baseline})")
        return BertScoreSetup(path, True, BERTSCORE_LAYERS, baseline, f"{BERTSCORE_MODEL}, layer 40, rescaled")
    if layers < 1:
        raise MetricUnavailable(f"BERTScore model {path}: config.json has no num_hidden_layers")
    note = (
        f"not the official metric: the local model ({model_type}, {layers} layers) is not {BERTSCORE_MODEL}; "
        f"layer {layers} (the last), not rescaled (bert_score has no baseline for a local model)"
    )
    return BertScoreSetup(path, False, layers, None, note)


def bertscore_f1(
    candidates: Sequence[str],
    references: Sequence[str],
    model_path: str | Path,
    setup: BertScoreSetup | None = None,
) -> list[float]:
    """BERTScore F1 of each pair with a local model (see :class:`BertScoreSetup` for layer and rescaling).

    With a copy of ``microsoft/deberta-xlarge-mnli`` this is the official metric: layer 40, rescaled with
    the baseline file bert_score ships for that model. Raises :class:`MetricUnavailable` as
    :func:`bertscore_setup` does.
    """
    setup = setup or bertscore_setup(model_path)
    if not candidates:
        return []
    import bert_score

    options: dict[str, Any] = {"model_type": str(setup.model), "num_layers": setup.num_layers}
    if setup.baseline is not None:
        options.update(lang="en", rescale_with_baseline=True, baseline_path=str(setup.baseline))
    _, _, f1 = bert_score.score(list(candidates), list(references), **options)
    return [float(value) for value in f1.tolist()]


def bleurt_setup(checkpoint: str | Path) -> Path:
    """Check a BLEURT checkpoint directory and the ``bleurt`` package; raises :class:`MetricUnavailable`."""
    path = Path(checkpoint)
    if not path.is_dir():
        raise MetricUnavailable(f"BLEURT checkpoint directory not found: {path}")
    try:
        from bleurt import score as _  # noqa: F401
    except ImportError:
        raise MetricUnavailable(f"BLEURT needs the bleurt package: {BLEURT_INSTALL}") from None
    return path


def bleurt_scores(candidates: Sequence[str], references: Sequence[str], checkpoint: str | Path) -> list[float]:
    """BLEURT scores with a local BLEURT-20 checkpoint. Raises :class:`MetricUnavailable` when the
    ``bleurt`` package is not installed or the checkpoint directory does not exist."""
    path = bleurt_setup(checkpoint)
    if not candidates:
        return []
    from bleurt import score as bleurt_score

    scorer = bleurt_score.BleurtScorer(str(path))
    return [float(value) for value in scorer.score(references=list(references), candidates=list(candidates))]


def not_requested_reason(name: str) -> str:
    """Why a model-based metric that was not asked for is missing, and what computing it needs."""
    if name == "bertscore_f1":
        package = "installed" if _installed("bert_score") else f"not installed: {BERTSCORE_INSTALL}"
        return (
            f"not computed: no --bertscore-model given (needs a local copy of {BERTSCORE_MODEL}; "
            f"bert-score package {package})"
        )
    if name == "bleurt":
        package = "installed" if _installed("bleurt") else f"not installed: {BLEURT_INSTALL}"
        return (
            f"not computed: no --bleurt-checkpoint given (needs a local {BLEURT_CHECKPOINT} checkpoint; "
            f"bleurt package {package})"
        )
    raise KeyError(name)


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
    """One correction metric: computed or not (with the reason), its means and what it ran with.

    ``official`` is false for a metric computed differently from the official definition (a BERTScore with
    another model); ``reason`` then says how.
    """

    name: str
    computed: bool
    mean_scored: float | None = None
    composite: float | None = None
    reason: str | None = None
    source: str | None = None
    official: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        data: dict[str, Any] = {"computed": self.computed}
        if self.computed:
            data["mean_scored"] = self.mean_scored
            data["composite"] = self.composite
            data["official"] = self.official
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
    #: Metrics of the official aggregate that are not in :attr:`aggregate`, with the reason.
    aggregate_missing: dict[str, str] = field(default_factory=dict)

    @property
    def aggregate_complete(self) -> bool:
        """Whether the aggregate is the official one (ROUGE-1 F, BERTScore F1 and BLEURT-20 all in it)."""
        return not self.aggregate_missing

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
                "aggregate": {
                    "metrics": list(self.aggregate_metrics),
                    "complete": self.aggregate_complete,
                    "missing": dict(self.aggregate_missing),
                    **self.aggregate.to_dict(),
                },
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


def score_submission(
    gold: Sequence[MedecRecord],
    submission: Submission,
    *,
    bertscore_model: str | Path | None = None,
    bleurt_checkpoint: str | Path | None = None,
) -> ScoreResult:
    """Score ``submission`` against labeled ``gold`` records (see the module docstring for definitions).

    Raises ValueError for a gold file without labels and :class:`MetricUnavailable` when ROUGE's package is
    missing or a model-based metric was asked for but cannot be computed (checked before any scoring).
    """
    check_gold(gold)
    _require_rouge()
    bert_setup = bertscore_setup(bertscore_model) if bertscore_model is not None else None
    bleurt_path = bleurt_setup(bleurt_checkpoint) if bleurt_checkpoint is not None else None
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
        # The official script enforces NA for a prediction of "no error", whatever the line writes.
        hypothesis = NA if line.error_flag == 0 else clean_correction(line.corrected_sentence)
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

    def summarise(
        name: str, values: list[float], source: str | None = None, official: bool = True, reason: str | None = None
    ) -> MetricResult:
        return MetricResult(
            name=name,
            computed=True,
            mean_scored=sum(values) / scored if scored else None,
            composite=(sum(values) + both_na) / total,
            source=source,
            official=official,
            reason=reason,
        )

    for name in ROUGE_METRICS:
        metrics[name] = summarise(name, per_pair[name], f"rouge {_version('rouge')} (Rouge().get_scores)")

    if bert_setup is None:
        metrics["bertscore_f1"] = MetricResult(
            "bertscore_f1", computed=False, reason=not_requested_reason("bertscore_f1")
        )
    else:
        values = bertscore_f1(pair_hyps, pair_refs, bert_setup.model, bert_setup)
        if len(values) != scored:
            raise MetricUnavailable(f"bertscore_f1: got {len(values)} scores for {scored} pairs")
        per_pair["bertscore_f1"] = [_clip(value) for value in values]
        metrics["bertscore_f1"] = summarise(
            "bertscore_f1",
            per_pair["bertscore_f1"],
            f"bert-score {_version('bert-score')}, {bert_setup.model} (layer {bert_setup.num_layers}, "
            + ("rescaled)" if bert_setup.baseline is not None else "not rescaled)"),
            official=bert_setup.official,
            reason=None if bert_setup.official else bert_setup.note,
        )
    if bleurt_path is None:
        metrics["bleurt"] = MetricResult("bleurt", computed=False, reason=not_requested_reason("bleurt"))
    else:
        values = bleurt_scores(pair_hyps, pair_refs, bleurt_path)
        if len(values) != scored:
            raise MetricUnavailable(f"bleurt: got {len(values)} scores for {scored} pairs")
        per_pair["bleurt"] = [_clip(value) for value in values]
        metrics["bleurt"] = summarise("bleurt", per_pair["bleurt"], f"bleurt {_version('bleurt')}, {bleurt_path}")

    used = [name for name in AGGREGATE_METRICS if metrics[name].computed and metrics[name].official]
    aggregate_missing = {
        name: ("not computed" if not metrics[name].computed else "computed, but not the official metric")
        for name in AGGREGATE_METRICS
        if name not in used
    }
    aggregate_values = [sum(per_pair[name][i] for name in used) / len(used) for i in range(scored)]
    aggregate_source = "mean of " + ", ".join(METRIC_LABELS[n] for n in used)
    aggregate = summarise(
        "aggregate",
        aggregate_values,
        aggregate_source,
        official=not aggregate_missing,
        reason=(
            "without "
            + ", ".join(f"{METRIC_LABELS[n]} ({why})" for n, why in aggregate_missing.items())
            + "; not comparable with published aggregate scores"
        )
        if aggregate_missing
        else None,
    )

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
        aggregate_missing=aggregate_missing,
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
        label = _label(name, result)
        if metric.computed:
            out.append(f"  {label:<14} {_fmt(metric.mean_scored):>12} {_fmt(metric.composite):>10}")
            if metric.reason and name != "aggregate":
                out.append(f"    ({metric.reason})")
        else:
            out.append(f"  {label:<14} {metric.reason}")
    out.append(("  " if result.aggregate_complete else "  * ") + _aggregate_line(result))
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
    lines = [f"### {title}", ""] if title else []
    lines += [
        "| Metric | Score | Composite |",
        "| --- | ---: | ---: |",
        f"| Error flag accuracy | {result.flag_accuracy:.4f} | |",
        f"| Error sentence accuracy | {result.sentence_accuracy:.4f} | |",
    ]
    for name, metric in [*result.metrics.items(), ("aggregate", result.aggregate)]:
        if name == "aggregate":
            used = ", ".join(METRIC_LABELS[n] for n in result.aggregate_metrics)
            label = f"Aggregate ({used})" if result.aggregate_complete else f"Aggregate, partial ({used} only)"
        else:
            label = METRIC_LABELS[name] + ("" if metric.official else " (not official)")
        if metric.computed:
            lines.append(f"| {label} | {_fmt(metric.mean_scored)} | {_fmt(metric.composite)} |")
        else:
            lines.append(f"| {label} | {_escape_md(metric.reason or 'not computed')} | |")
    pairs = result.pairs
    notes = [
        f"{METRIC_LABELS[name]}: {metric.reason}."
        for name, metric in result.metrics.items()
        if metric.computed and not metric.official and metric.reason
    ]
    lines += ["", _escape_md(_aggregate_line(result)), *(["", *map(_escape_md, notes)] if notes else [])]
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


def _label(name: str, result: ScoreResult) -> str:
    """A metric's label in the text report: ``*`` marks a partial aggregate, ``†`` a non-official metric."""
    if name == "aggregate":
        return "Aggregate" if result.aggregate_complete else "Aggregate*"
    metric = result.metrics[name]
    return METRIC_LABELS[name] + ("" if metric.official or not metric.computed else "†")


def _aggregate_line(result: ScoreResult) -> str:
    """What the aggregate averages and, when partial, what it lacks."""
    used = ", ".join(METRIC_LABELS[n] for n in result.aggregate_metrics)
    if result.aggregate_complete:
        return f"Aggregate = mean of {used} (the official aggregate)."
    return f"PARTIAL aggregate = mean of {used} only, {result.aggregate.reason}."


def _escape_md(text: str) -> str:
    return re.sub(r"([|])", r"\\\1", text)
