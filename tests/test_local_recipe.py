"""The connector README's local run works as written, and its sample output is what the code produces."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_recipe import SAMPLE_INPUT, SAMPLE_OUTPUT, run_recipe  # noqa: E402

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _numbers_apart(value: Any) -> tuple[Any, list[float]]:
    """``value`` with every float replaced by None, and the floats in document order."""
    floats: list[float] = []

    def strip(node: Any) -> Any:
        if isinstance(node, float):
            floats.append(node)
            return None
        if isinstance(node, dict):
            return {key: strip(item) for key, item in node.items()}
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return strip(value), floats


def test_local_recipe_gives_the_sample_bundle(tmp_path):
    result = run_recipe(tmp_path)
    bundle = result["bundle"]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert result["join_delay_s"] < 10.0, result["stderr"][-3000:]
    assert "Traceback" not in result["stderr"]
    assert SAMPLE_OUTPUT.is_file(), "write it with: python tests/local_recipe.py --write-sample"
    shipped = json.loads(SAMPLE_OUTPUT.read_text(encoding="utf-8"))
    shape, scores = _numbers_apart(bundle)
    shipped_shape, shipped_scores = _numbers_apart(shipped)
    hint = "the output changed: regenerate the sample with python tests/local_recipe.py --write-sample"
    assert shape == shipped_shape, hint
    # int8 scores can move in the last digits on another CPU; anything more is a real change
    assert scores == pytest.approx(shipped_scores, abs=0.02), hint


def test_sample_input_is_a_valid_document_reference():
    from medcorr.fhir import read_notes

    notes = read_notes(SAMPLE_INPUT.read_bytes(), "R4", 1 << 20)
    assert len(notes) == 1 and notes[0].error is None and notes[0].source.id == "sample-note-1"
