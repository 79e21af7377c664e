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


def assert_same_predictions(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert np.array_equal(a.location, b.location) and np.array_equal(a.error, b.error)
        assert np.array_equal(a.types, b.types) and np.array_equal(a.token_probs, b.token_probs)


def test_submitted_predictions_equal_predict_in_any_order_of_collection():
    inputs = notes()
    detector = OnnxDetector(num_threads=2, concurrent_calls=2)
    expected = detector.predict(inputs)
    first, second = detector.submit(detector.prepare(inputs[:7])), detector.submit(detector.prepare(inputs[7:]))
    later, earlier = second.result(), first.result()  # collected out of order
    assert_same_predictions(earlier + later, expected)
    assert_same_predictions(detector.run_prepared(detector.prepare(inputs)), expected)


def test_cancel_drops_queued_calls_that_have_not_started():
    import threading

    detector = OnnxDetector(num_threads=1, concurrent_calls=1)
    release, started = threading.Event(), []
    original = detector.run_batch

    def blocking_run(batch):
        started.append(batch.input_ids.shape)
        release.wait(10)
        return original(batch)

    detector.run_batch = blocking_run
    pending = detector.submit(detector.prepare(notes()[:3]))
    assert len(pending.prepared.batches) >= 3
    while not started:  # the first call is running, the others are queued
        threading.Event().wait(0.01)
    pending.cancel()
    release.set()
    detector._pool.shutdown(wait=True)
    assert len(started) == 1
