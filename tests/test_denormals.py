"""Denormals are flushed in the detector's model threads only, and flushing does not change its outputs."""
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from medcorr import denormals
from medcorr.detector import OnnxDetector

try:
    from tests.test_detector_concurrency import EXAMPLES, assert_same_predictions, notes
except ImportError:  # tests/ on sys.path rather than the repo root
    from test_detector_concurrency import EXAMPLES, assert_same_predictions, notes

SUPPORTED = denormals._libm() is not None
needs_support = pytest.mark.skipif(not SUPPORTED, reason="flush-to-zero is set only on x86-64 Linux with glibc")


def in_new_thread(function):
    results = []
    thread = threading.Thread(target=lambda: results.append(function()))
    thread.start()
    thread.join()
    return results[0]


@needs_support
def test_flush_denormals_sets_the_calling_thread_only():
    def flush_then_check():
        return denormals.flushes_denormals(), denormals.flush_denormals(), denormals.flushes_denormals()

    before, set_ok, after = in_new_thread(flush_then_check)
    assert (before, set_ok, after) == (False, True, True)
    assert in_new_thread(denormals.flushes_denormals) is False  # another thread is untouched


def test_flushes_denormals_reads_the_mode():
    tiny = np.float32(1.1754944e-38) * np.float32(0.5)
    assert denormals.flushes_denormals() is bool(tiny == 0)


@needs_support
def test_model_threads_flush_and_the_callers_thread_keeps_its_mode():
    # a fresh interpreter: onnxruntime sets the mode of the thread that creates a process's first session
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from medcorr import denormals
        from medcorr.detector import OnnxDetector
        text = Path(sys.argv[1]).read_text(encoding="utf-8")
        detector = OnnxDetector(num_threads=2)
        assert not denormals.flushes_denormals()
        detector.predict([(text, [(0, len(text) // 2), (len(text) // 2, len(text))])] * 4)
        print(denormals.flushes_denormals(), detector._pool.submit(denormals.flushes_denormals).result())
    """)
    out = subprocess.run([sys.executable, "-c", script, str(next(EXAMPLES.glob("*.txt")))], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "True"]


def test_flushing_does_not_change_predictions():
    inputs = notes()
    flushed = OnnxDetector(num_threads=2).predict(inputs)
    plain = OnnxDetector(num_threads=2)  # one intra-op thread per call: the calls run in the pool's threads
    plain._pool = ThreadPoolExecutor(plain.concurrent_calls)  # threads that keep the default mode
    assert plain._pool.submit(denormals.flushes_denormals).result() is False
    assert_same_predictions(plain.predict(inputs), flushed)


def test_concurrent_first_calls_create_one_session(monkeypatch):
    from medcorr import ort_cache

    created = []
    real = ort_cache.create_session
    monkeypatch.setattr(ort_cache, "create_session", lambda *a, **k: created.append(1) or real(*a, **k))
    detector = OnnxDetector(num_threads=2, concurrent_calls=2)
    detector.predict(notes())
    assert len(created) == 1
