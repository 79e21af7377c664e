"""MEDIQA-CORR scoring: definitions checked against hand computations on small fixtures."""
from __future__ import annotations

import io
import re
import sys
import types
from pathlib import Path

import pytest

from medcorr.medec.io import LABEL_COLUMNS, gold_submission, read_medec, read_submission, write_submission
from medcorr.medec.score import (
    MetricUnavailable,
    baseline_submissions,
    bertscore_setup,
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
    assert not result.aggregate_complete and not result.aggregate.official
    assert result.aggregate_missing == {"bertscore_f1": "not computed", "bleurt": "not computed"}
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


def test_model_metrics_fail_clearly_when_unavailable(tmp_path, monkeypatch):
    with pytest.raises(MetricUnavailable, match="not found"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bertscore_model=tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MetricUnavailable, match="no config.json"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bertscore_model=empty)
    with pytest.raises(MetricUnavailable, match="not found"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bleurt_checkpoint=tmp_path / "nope")
    monkeypatch.setitem(sys.modules, "bert_score", None)  # the package not installed
    (empty / "config.json").write_text('{"model_type": "deberta", "num_hidden_layers": 48}')
    with pytest.raises(MetricUnavailable, match=r"bert-score package: pip install 'medcorr\[scoring\]'"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bertscore_model=empty)
    monkeypatch.setitem(sys.modules, "bleurt", None)
    with pytest.raises(MetricUnavailable, match="bleurt package"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bleurt_checkpoint=empty)


def test_another_bertscore_model_is_not_official(tmp_path, monkeypatch):
    """A local encoder other than deberta-xlarge-mnli: its last layer, no rescaling, marked not official."""
    package = tmp_path / "bert_score"
    package.mkdir()
    bert_module = types.ModuleType("bert_score")
    bert_module.__file__ = str(package / "__init__.py")
    monkeypatch.setitem(sys.modules, "bert_score", bert_module)
    other = tmp_path / "minilm"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": 6}')
    setup = bertscore_setup(other)
    assert (setup.official, setup.num_layers, setup.baseline) == (False, 6, None)
    assert "not rescaled" in setup.note and "microsoft/deberta-xlarge-mnli" in setup.note
    official = tmp_path / "deberta"
    official.mkdir()
    (official / "config.json").write_text('{"model_type": "deberta", "num_hidden_layers": 48}')
    with pytest.raises(MetricUnavailable, match="no rescale baseline"):  # never scored unrescaled as official
        bertscore_setup(official)


def test_requested_metrics_are_checked_before_any_scoring(tmp_path, monkeypatch):
    """A BLEURT that cannot run stops the scoring before BERTScore spends its time."""
    model = tmp_path / "minilm"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": 6}')
    bert_module = types.ModuleType("bert_score")
    bert_module.__file__ = str(tmp_path / "bert_score" / "__init__.py")
    calls = []
    bert_module.score = lambda *args, **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "bert_score", bert_module)
    monkeypatch.setitem(sys.modules, "bleurt", None)
    with pytest.raises(MetricUnavailable, match="bleurt package"):
        score_submission(_gold(), _submission(HANDCALC_PRED), bertscore_model=model, bleurt_checkpoint=tmp_path)
    assert calls == []


def test_a_no_error_prediction_counts_as_na():
    """The official script enforces NA for a flag-0 line, whatever correction it writes."""
    text = HANDCALC_PRED.replace("h-b 0 -1 NA", 'h-b 0 -1 "Some sentence."').replace(
        "h-c 0 -1 NA", 'h-c 0 -1 "Culture grows Escherichia coli."'
    )
    assert 'h-b 0 -1 "Some' in text
    result = score_submission(_gold(), _submission(text))
    assert result.pairs == {"scored": 2, "both_na": 1, "one_na": 2, "missing": 0}  # as with NA written
    assert result.metrics["rouge1_f"].composite == pytest.approx(
        score_submission(_gold(), _submission(HANDCALC_PRED)).metrics["rouge1_f"].composite
    )


def test_missing_rouge_package_is_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    """``medcorr medec score`` without the rouge package: one line naming what to install, exit 2."""
    import medcorr.cli

    monkeypatch.setattr(medcorr.cli, "SUBCOMMAND_MODULES", ("medcorr.medec.cli",))
    monkeypatch.setitem(sys.modules, "rouge", None)  # import rouge -> ModuleNotFoundError
    pred = tmp_path / "pred.txt"
    pred.write_text(HANDCALC_PRED, encoding="utf-8")
    code = medcorr.cli.main(["medec", "score", "--gold", str(FIXTURES / "handcalc.csv"), "--pred", str(pred)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("medcorr: error: ROUGE needs the rouge package: pip install rouge==1.0.1")
    assert len(err.strip().splitlines()) == 1


def test_rouge_is_a_runtime_dependency():
    """A plain ``pip install medcorr`` (no extra) brings the package ``medec score`` needs for ROUGE."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8"))
    runtime = [re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower() for dep in pyproject["project"]["dependencies"]]
    assert "rouge" in runtime
    assert any(dep.startswith("bert-score") for dep in pyproject["project"]["optional-dependencies"]["scoring"])
    assert any(dep.startswith("bert-score") for dep in pyproject["project"]["optional-dependencies"]["test"])


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
    assert result.aggregate_complete and result.aggregate.official and result.aggregate_missing == {}
    assert "| Aggregate (ROUGE-1 F, BERTScore F1, BLEURT-20) |" in format_markdown(result)
    assert "Aggregate = mean of ROUGE-1 F, BERTScore F1, BLEURT-20 (the official aggregate)." in format_text(result)
    assert result.to_dict()["correction"]["aggregate"]["complete"] is True
    bert = {"a": 0.0, "e": 1.0}  # clipped from -0.2 and 1.3
    assert result.metrics["bertscore_f1"].composite == pytest.approx((0.0 + 1.0 + 1) / 5)
    r1 = {"a": _f(8 / 9, 8 / 9), "e": _f(1, 1)}
    aggregate = [(r1[k] + bert[k] + 0.5) / 3 for k in ("a", "e")]
    assert result.aggregate.mean_scored == pytest.approx(sum(aggregate) / 2, abs=1e-9)
    assert result.aggregate.composite == pytest.approx((sum(aggregate) + 1) / 5, abs=1e-9)


def test_reports_name_the_aggregate_metrics():
    result = score_submission(_gold(), _submission(HANDCALC_PRED))
    text = format_text(result)
    assert "  Aggregate* " in text
    assert "* PARTIAL aggregate = mean of ROUGE-1 F only, without BERTScore F1 (not computed), BLEURT-20 (not " in text
    assert "BERTScore F1   not computed: no --bertscore-model given" in text
    assert "BLEURT-20      not computed: no --bleurt-checkpoint given" in text
    markdown = format_markdown(result)
    assert markdown.startswith("| Metric | Score | Composite |")
    assert "| Aggregate, partial (ROUGE-1 F only) |" in markdown
    assert "PARTIAL aggregate = mean of ROUGE-1 F only" in markdown
    assert "| Flag accuracy, always error | 0.6000 |" in markdown
    data = result.to_dict()
    assert data["correction"]["aggregate"]["metrics"] == ["rouge1_f"]
    assert data["correction"]["aggregate"]["complete"] is False
    assert set(data["correction"]["aggregate"]["missing"]) == {"bertscore_f1", "bleurt"}
    assert "not comparable with published aggregate scores" in data["correction"]["aggregate"]["reason"]
    assert "reason" in data["correction"]["metrics"]["bleurt"]
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
