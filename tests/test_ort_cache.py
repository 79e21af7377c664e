"""The optimized-graph cache: same outputs as an uncached session, user cache dir only, safe fallbacks."""
import numpy as np

from medcorr.detector import OnnxDetector, default_model_dir
from medcorr.ort_cache import CACHE_ENV, cache_dir, disabled_optimizers

NOTES = [
    ("Fever and cough for three days. Chest x-ray shows a right lower lobe consolidation. "
     "Amoxicillin is started for community-acquired pneumonia.", [(0, 31), (32, 84), (85, 142)]),
    ("The patient has crushing chest pain. ECG shows ST elevation. He is diagnosed with pericarditis.",
     [(0, 36), (37, 60), (61, 95)]),
]


def _outputs(monkeypatch, setting: str) -> list[np.ndarray]:
    monkeypatch.setenv(CACHE_ENV, setting)
    detector = OnnxDetector(batch_size=8)
    windows = [w for ws in detector.encoder.encode_notes(NOTES) for w in ws]
    segment_logits, token_logits = detector.run_windows(windows)
    return [segment_logits[id(w)] for w in windows] + [token_logits[id(w)] for w in windows]


def test_cached_graph_gives_identical_outputs_and_stays_out_of_the_package(monkeypatch, tmp_path):
    package_files = sorted(p.name for p in default_model_dir().iterdir())
    uncached = _outputs(monkeypatch, "")
    first = _outputs(monkeypatch, str(tmp_path))  # writes the entry
    entries = list(tmp_path.glob("*.onnx"))
    assert len(entries) == 1 and entries[0].stat().st_size > 0
    second = _outputs(monkeypatch, str(tmp_path))  # loads it
    for a, b, c in zip(uncached, first, second):
        assert np.array_equal(a, b) and np.array_equal(a, c)
    assert sorted(p.name for p in default_model_dir().iterdir()) == package_files


def test_corrupt_entry_falls_back_and_is_replaced(monkeypatch, tmp_path):
    reference = _outputs(monkeypatch, str(tmp_path))
    entry = next(tmp_path.glob("*.onnx"))
    entry.write_bytes(b"not an onnx graph")
    again = _outputs(monkeypatch, str(tmp_path))
    assert all(np.array_equal(a, b) for a, b in zip(reference, again))
    assert not entry.exists() or entry.read_bytes() != b"not an onnx graph"


def test_empty_setting_disables_and_default_is_a_user_cache_dir(monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "")
    assert cache_dir() is None
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert str(cache_dir()).replace("\\", "/").startswith("/somewhere/cache/medcorr")


def test_unwritable_cache_dir_still_gives_a_session(monkeypatch):
    assert len(_outputs(monkeypatch, "/proc/medcorr-cannot-write-here")) == 2 * len(NOTES)


def test_cpu_graph_keeps_layer_norm_unfused(monkeypatch, tmp_path):
    """The cached CPU graph has no SkipLayerNormalization (its CPU kernel is ~9x slower than LayerNorm)."""
    import onnx

    _outputs(monkeypatch, str(tmp_path))
    ops = {node.op_type for node in onnx.load(str(next(tmp_path.glob("*.onnx")))).graph.node}
    assert "LayerNormalization" in ops and "SkipLayerNormalization" not in ops
    assert disabled_optimizers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == []
