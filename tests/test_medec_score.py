"""MEDIQA-CORR scoring: definitions checked against hand computations on small fixtures."""
from __future__ import annotations

import io
import sys
import types
from pathlib import Path

import pytest

from medcorr.medec.io import LABEL_COLUMNS, gold_submission, read_medec, read_submission, write_submission
from medcorr.medec.score import (
    MetricUnavailable,
    baseline_submissions,
    clean_correction,
    format_markdown,
    format_text,
    majority_baselines,
    rouge_f,
    score_submission,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "medec"
SHARED_VAL = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "medec"
    / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"
)

# Predictions for tests/fixtures/medec/handcalc.csv (gold: h-a error s0, h-b none, h-c error s0, h-d none,
# h-e error s1):
#   h-a: right flag and sentence, correction with one word of nine replaced
#   h-b: right "no error"                        -> both NA: credit 1
#   h-c: missed error                            -> one NA: 0, flag and sentence wrong
#   h-d: false alarm                             -> one NA: 0, flag and sentence wrong
#   h-e: right flag, wrong sentence, correction equal to the reference
HANDCALC_PRED = """\
h-a 1 0 "She is treated with oral ciprofloxacin for five days."
h-b 0 -1 NA
h-c 0 -1 NA
h-d 1 0 "Some sentence."
h-e 1 0 "Patient is started on lactulose."
"""


def _f(p: float, r: float) -> float:
    """The F the rouge package computes (its 1e-8 guard against division by zero)."""
    return 2.0 * p * r / (p + r + 1e-8)


def _gold(name: str = "handcalc.csv"):
    return read_medec(FIXTURES / name, require=LABEL_COLUMNS)


def _submission(text: str):
    return read_submission(io.StringIO(text))


def test_hand_computation():
    result = score_submission(_gold(), _submission(HANDCALC_PRED))
    assert result.texts == 5 and result.missing == 0
    assert result.flag_accuracy == pytest.approx(3 / 5)  # a, b, e
    assert result.sentence_accuracy == pytest.approx(2 / 5)  # a, b (a correct -1 counts)
    assert result.pairs == {"scored": 2, "both_na": 1, "one_na": 2, "missing": 0}
    # h-a: 9 unigrams each side, 8 shared; 8 bigrams each side, 6 shared; LCS 8 words. h-e: identical (5 words).
    r1 = {"a": _f(8 / 9, 8 / 9), "e": _f(1, 1)}
    r2 = {"a": _f(6 / 8, 6 / 8), "e": _f(1, 1)}
    rl = {"a": _f(8 / 9, 8 / 9), "e": _f(1, 1)}
    for name, pair in [("rouge1_f", r1), ("rouge2_f", r2), ("rougeL_f", rl)]:
        metric = result.metrics[name]
        assert metric.computed
        assert metric.mean_scored == pytest.approx((pair["a"] + pair["e"]) / 2, abs=1e-9)
        assert metric.composite == pytest.approx((pair["a"] + pair["e"] + 1) / 5, abs=1e-9)
    assert result.aggregate_metrics == ["rouge1_f"]
    assert result.aggregate.composite == pytest.approx(result.metrics["rouge1_f"].composite)
    assert not result.metrics["bertscore_f1"].computed
    assert "--bertscore-model" in result.metrics["bertscore_f1"].reason
    assert "--bleurt-checkpoint" in result.metrics["bleurt"].reason


def test_per_type_breakdown():
    result = score_submission(_gold(), _submission(HANDCALC_PRED))
    rows = {row.error_type: (row.texts, row.flag_correct, row.sentence_correct) for row in result.per_type}
    assert rows == {
        "no error": (2, 1, 1),
        "diagnosis": (1, 0, 0),
        "management": (1, 1, 0),
        "pharmacotherapy": (1, 1, 1),
    }
    assert result.per_type[0].error_type == "no error"


def test_missing_and_unknown_predictions():
    text = "h-a 1 0 \"She is treated with oral nitrofurantoin for five days.\"\nzz-9 1 0 x\nnot a line\n"
    result = score_submission(_gold(), _submission(text))
    assert result.missing == 4 and result.predicted == 1
    assert result.flag_accuracy == pytest.approx(1 / 5)
    assert result.sentence_accuracy == pytest.approx(1 / 5)  # h-b's missing "-1" is not a hit
    assert result.pairs["both_na"] == 0
    assert result.metrics["rouge1_f"].composite == pytest.approx(_f(1, 1) / 5)
    assert result.unknown_ids == 1 and result.invalid_lines == 1
    assert any("not in the gold file" in w for w in result.warnings)


def test_quotes_are_ignored_in_corrections():
    assert clean_correction('"He said  "stop"."') == "He said stop."
    assert clean_correction('""') == "NA"
    assert clean_correction(None) == "NA"
    assert rouge_f("Hypothesis with words.", ".")["rouge1_f"] == 0.0  # nothing to score: 0, no crash


def test_gold_scores_perfectly_and_official_bugs_are_fixed():
    """labeled.csv has float labels, empty trailing rows, an uppercase id and backslashes."""
    gold = read_medec(FIXTURES / "labeled.csv", require=LABEL_COLUMNS)
    buffer = io.StringIO()
    write_submission(gold_submission(gold), buffer)
    assert "FX-2 1 2 " in buffer.getvalue()
    result = score_submission(gold, _submission(buffer.getvalue()))
    assert result.texts == 5  # the two empty rows are not texts
    assert result.flag_accuracy == 1.0 and result.sentence_accuracy == 1.0  # "1.0" equals "1"
    assert result.aggregate.composite == pytest.approx(1.0, abs=1e-7)
    assert result.pairs == {"scored": 2, "both_na": 3, "one_na": 0, "missing": 0}
    backslash = _submission('FX-2 1 2 "He is diagnosed with \\1 inferior \\ myocardial infarction."\n')
    scored = score_submission(gold, backslash)
    assert scored.invalid_lines == 0 and scored.pairs["scored"] == 1
    assert scored.metrics["rouge1_f"].mean_scored == pytest.approx(_f(7 / 9, 7 / 7), abs=1e-9)


def test_majority_baselines_on_fixture():
    baselines = majority_baselines(_gold())  # 3 error texts, 2 without; sentence ids 0, -1, 0, -1, 1
    assert (baselines.flag_value, baselines.flag_accuracy) == (1, pytest.approx(3 / 5))
    assert (baselines.sentence_value, baselines.sentence_accuracy) == (-1, pytest.approx(2 / 5))  # tie -1/0
    submissions = baseline_submissions(_gold())
    never = score_submission(_gold(), read_submission(io.StringIO(_lines(submissions["always-no-error"]))))
    assert never.flag_accuracy == pytest.approx(2 / 5) and never.sentence_accuracy == pytest.approx(2 / 5)
    assert never.aggregate.composite == pytest.approx(2 / 5)
    always = score_submission(_gold(), read_submission(io.StringIO(_lines(submissions["always-error"]))))
    assert always.flag_accuracy == pytest.approx(baselines.flag_accuracy)
    assert [line.error_sentence_id for line in submissions["always-error"]] == [0, 0, 0, 0, 0]


def _lines(lines) -> str:
    buffer = io.StringIO()
    write_submission(lines, buffer)
    return buffer.getvalue()


def test_gold_without_labels_is_rejected():
    with pytest.raises(ValueError):
        score_submission(read_medec(FIXTURES / "unlabeled.csv"), _submission(""))


def test_model_metrics_fail_clearly_when_unavailable(tmp_path):
    with pytest.raises(MetricUnavailable, match="not found"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bertscore_model=tmp_path / "nope")
    other = tmp_path / "minilm"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": 6}')
    with pytest.raises(MetricUnavailable, match="not microsoft/deberta-xlarge-mnli"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bertscore_model=other)
    with pytest.raises(MetricUnavailable, match="not found"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bleurt_checkpoint=tmp_path / "nope")


def test_model_metrics_enter_the_aggregate(tmp_path, monkeypatch):
    """With (stand-in) BERTScore and BLEURT packages the aggregate averages three clipped metrics."""
    model = tmp_path / "deberta"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "deberta", "num_hidden_layers": 48}')
    checkpoint = tmp_path / "BLEURT-20"
    checkpoint.mkdir()
    package = tmp_path / "bert_score"
    (package / "rescale_baseline" / "en" / "microsoft").mkdir(parents=True)
    (package / "rescale_baseline" / "en" / "microsoft" / "deberta-xlarge-mnli.tsv").write_text("")
    calls = {}

    def fake_score(cands, refs, **kwargs):
        calls["bertscore"] = kwargs

        class F1:
            @staticmethod
            def tolist():
                return [1.3 if c == r else -0.2 for c, r in zip(cands, refs)]  # out of range: clipped

        return None, None, F1()

    class FakeBleurt:
        def __init__(self, path):
            calls["bleurt"] = path

        def score(self, references, candidates):
            return [0.5 for _ in candidates]

    bert_module = types.ModuleType("bert_score")
    bert_module.__file__ = str(package / "__init__.py")
    bert_module.score = fake_score
    bleurt_module = types.ModuleType("bleurt")
    bleurt_score = types.ModuleType("bleurt.score")
    bleurt_score.BleurtScorer = FakeBleurt
    bleurt_module.score = bleurt_score
    monkeypatch.setitem(sys.modules, "bert_score", bert_module)
    monkeypatch.setitem(sys.modules, "bleurt", bleurt_module)
    monkeypatch.setitem(sys.modules, "bleurt.score", bleurt_score)

    result = score_submission(
        _gold(), _submission(HANDCALC_PRED), bertscore_model=model, bleurt_checkpoint=checkpoint
    )
    assert calls["bertscore"]["rescale_with_baseline"] is True
    assert calls["bertscore"]["num_layers"] == 40 and calls["bertscore"]["model_type"] == str(model)
    assert calls["bleurt"] == str(checkpoint)
    assert result.aggregate_metrics == ["rouge1_f", "bertscore_f1", "bleurt"]
    bert = {"a": 0.0, "e": 1.0}  # clipped from -0.2 and 1.3
    assert result.metrics["bertscore_f1"].composite == pytest.approx((0.0 + 1.0 + 1) / 5)
    r1 = {"a": _f(8 / 9, 8 / 9), "e": _f(1, 1)}
    aggregate = [(r1[k] + bert[k] + 0.5) / 3 for k in ("a", "e")]
    assert result.aggregate.mean_scored == pytest.approx(sum(aggregate) / 2, abs=1e-9)
    assert result.aggregate.composite == pytest.approx((sum(aggregate) + 1) / 5, abs=1e-9)


def test_reports_name_the_aggregate_metrics():
    result = score_submission(_gold(), _submission(HANDCALC_PRED))
    text = format_text(result)
    assert "aggregate = mean of ROUGE-1 F" in text and "not computed" in text
    markdown = format_markdown(result)
    assert markdown.startswith("| Metric | Score | Composite |")
    assert "| Aggregate (ROUGE-1 F) |" in markdown
    assert "| Flag accuracy, always error | 0.6000 |" in markdown
    data = result.to_dict()
    assert data["correction"]["aggregate"]["metrics"] == ["rouge1_f"]
    assert data["majority_baselines"]["sentence"]["name"] == "always no error"


@pytest.mark.medec
def test_shared_validation_baselines_and_self_score():
    if not SHARED_VAL.is_file():
        pytest.skip("../shared/medec is absent")
    gold = read_medec(SHARED_VAL, require=LABEL_COLUMNS)
    baselines = majority_baselines(gold)
    assert (baselines.flag_value, round(baselines.flag_accuracy, 3)) == (1, 0.556)
    assert (baselines.sentence_value, round(baselines.sentence_accuracy, 3)) == (-1, 0.444)
    perfect = score_submission(gold, read_submission(io.StringIO(_lines(gold_submission(gold)))))
    assert perfect.flag_accuracy == 1.0 and perfect.sentence_accuracy == 1.0
    assert perfect.aggregate.composite == pytest.approx(1.0, abs=1e-7)
    never = score_submission(gold, read_submission(io.StringIO(_lines(baseline_submissions(gold)["always-no-error"]))))
    assert never.sentence_accuracy == pytest.approx(baselines.sentence_accuracy)
    always = score_submission(gold, read_submission(io.StringIO(_lines(baseline_submissions(gold)["always-error"]))))
    assert always.flag_accuracy == pytest.approx(baselines.flag_accuracy)
