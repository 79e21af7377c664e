"""``medcorr correction-eval``: cross-validated candidate hit rates and the recall ceiling of re-ranking."""
import json
import subprocess
import sys
from pathlib import Path

from medcorr.train.correction_eval import evaluate_corrections
from medcorr.train.data import read_labelled

TINY = Path(__file__).parent / "fixtures" / "train_tiny.csv"


def test_hit_rates_and_pool_recall_are_consistent():
    notes = read_labelled([TINY])
    report = evaluate_corrections(notes, n_folds=2, seed=0, pool_sizes=(5, 50))
    assert report["notes"] == sum(n.has_error for n in notes)
    assert 0 <= report["top1"] <= report["top5"] == report["pool_recall"]["5"] <= report["pool_recall"]["50"] <= 1


def test_cli_prints_one_json_object():
    done = subprocess.run([sys.executable, "-m", "medcorr", "correction-eval", "--data", str(TINY), "--folds", "2",
                           "--pool", "10"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["pool_recall"]) == {"10"} and report["population"] == "all error notes"


def test_cli_rejects_a_missing_cv_json(tmp_path):
    done = subprocess.run([sys.executable, "-m", "medcorr", "correction-eval", "--data", str(TINY),
                           "--cv-json", str(tmp_path / "none.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "no such file" in done.stderr
