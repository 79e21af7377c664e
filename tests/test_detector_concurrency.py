"""Concurrent one-window ONNX calls: faster on CPU, and the outputs do not change."""
from pathlib import Path

import numpy as np

from medcorr.detector import CUDA, OnnxDetector, resolve_concurrent_calls

EXAMPLES = Path(__file__).resolve().parents[1] / "medcorr" / "data" / "examples"


def notes():
    texts = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.txt"))] * 3
    out = []
    for text in texts:
        spans, start = [], 0
        for part in text.split(". "):
            end = min(len(text), start + len(part) + 1)
            spans.append((start, end))
            start = end + 1
        out.append((text, tuple((s, e) for s, e in spans if s < e)))
    return out


def test_concurrent_calls_give_bit_identical_predictions():
    inputs = notes()
    serial = OnnxDetector(num_threads=2, concurrent_calls=1).predict(inputs)
    concurrent_detector = OnnxDetector(num_threads=2, concurrent_calls=2)
    assert concurrent_detector.concurrent_calls == 2
    concurrent = concurrent_detector.predict(inputs)
    assert len(serial) == len(concurrent) == len(inputs)
    for a, b in zip(serial, concurrent):
        assert np.array_equal(a.location, b.location) and np.array_equal(a.error, b.error)
        assert np.array_equal(a.types, b.types) and np.array_equal(a.token_probs, b.token_probs)


def test_auto_concurrency_only_for_one_window_calls_on_cpu():
    assert resolve_concurrent_calls(0, 1, ["CPUExecutionProvider"], 4) == 4
    assert resolve_concurrent_calls(0, 32, ["CPUExecutionProvider"], 4) == 1
    assert resolve_concurrent_calls(0, 1, [CUDA, "CPUExecutionProvider"], 4) == 1
    assert resolve_concurrent_calls(3, 32, [CUDA], 4) == 3
    assert OnnxDetector(num_threads=1).concurrent_calls == 1
