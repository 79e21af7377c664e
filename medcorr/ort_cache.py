"""onnxruntime sessions for the detector: threads without busy-waiting, graph optimization cached.

Creating a session optimizes the graph (fusions, constant folding) on every start; for the shipped int8
detector that is most of the session-creation time. The optimized graph is saved (at the
hardware-independent ``ORT_ENABLE_EXTENDED`` level) into a user cache directory, never next to the model,
and later sessions load it with ``ORT_ENABLE_ALL``: the computation, and so the outputs, are the same.

The cache lives in ``$MEDCORR_CACHE_DIR`` (empty value: no cache), else ``$XDG_CACHE_HOME/medcorr/ort`` or
``~/.cache/medcorr/ort`` (``%LOCALAPPDATA%\\medcorr\\ort`` on Windows). Entries are keyed by the model's
content hash, the onnxruntime version and the providers; only the :data:`KEEP_ENTRIES` most recently used
are kept. Any cache problem (read-only home, corrupt entry) falls back to a normal session, silently.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from medcorr.denormals import ORT_DENORMAL_CONFIG

log = logging.getLogger(__name__)
CACHE_ENV = "MEDCORR_CACHE_DIR"
KEEP_ENTRIES = 4
CPU_ONLY = ("CPUExecutionProvider",)
#: Graph fusions left out on CPU. onnxruntime's CPU ``SkipLayerNormalization`` kernel (1.32) took 487 µs on a
#: ``[1, 187, 384]`` input where ``LayerNormalization`` took 54 µs; without the fusion the int8 detector ran
#: 84.6 instead of 67.5 notes/s on the MEDEC notes, with the same distance to fp32 scores (0.0071).
CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
_HASH_CHUNK = 1 << 20
#: Initializers of at least this size go to a cache entry's ``.data`` file.
EXTERNAL_MIN_BYTES = 1024


def user_cache_dir(env: str, name: str) -> Path | None:
    """A medcorr cache directory: ``$<env>`` when set (an empty value switches the cache off), else
    ``$XDG_CACHE_HOME/medcorr/<name>`` or ``~/.cache/medcorr/<name>`` (``%LOCALAPPDATA%\\medcorr\\<name>`` on
    Windows)."""
    configured = os.environ.get(env)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "medcorr" / name
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "medcorr" / name


def cache_dir() -> Path | None:
    """The directory of cached optimized graphs, or None when caching is switched off."""
    return user_cache_dir(CACHE_ENV, "ort")


def disabled_optimizers(providers: Sequence[str]) -> list[str]:
    """The graph fusions a session on ``providers`` leaves out (see :data:`CPU_DISABLED_OPTIMIZERS`)."""
    return list(CPU_DISABLED_OPTIMIZERS) if tuple(providers) == CPU_ONLY else []


def _content_key(model: Path, providers: Sequence[str], ort_version: str, weights: Path | None = None) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for part in (model, weights) if weights is not None else (model,):
        with open(part, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    digest.update(f"|{ort_version}|{','.join(providers)}|{','.join(disabled_optimizers(providers))}".encode())
    return digest.hexdigest()[:24]


def session_options(ort: Any, threads: int, level: Any = None) -> Any:
    """Session options of the detector: ``threads`` intra-op threads, one inter-op thread, no spinning,
    denormals flushed to zero in the intra-op threads (:mod:`medcorr.denormals`).

    Idle intra-op threads sleep instead of busy-waiting (``allow_spinning=0``): the detector runs inside
    spaCy pipelines and services that have other work for the cores, and on a shared machine a spinning
    pool slows everything (2x on one-note batches with two threads next to another job). Outputs do not
    depend on it.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry(ORT_DENORMAL_CONFIG, "1")  # see medcorr.denormals
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if level is None else level
    return options


def _prune(directory: Path, keep: int = KEEP_ENTRIES) -> None:
    entries = sorted(directory.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[keep:]:
        stale.unlink(missing_ok=True)
        for weights in directory.glob(f"{stale.stem}.*.data"):
            weights.unlink(missing_ok=True)


def _write_optimized(ort: Any, model: Path, target: Path, providers: Sequence[str], threads: int) -> bool:
    """Optimize ``model`` once and store the graph at ``target`` (atomically); False when that fails."""
    temporary = target.with_name(f".{target.stem}.{os.getpid()}.tmp.onnx")
    # the weights go beside the graph, under the name the graph refers to (so not renamed afterwards);
    # onnxruntime would otherwise keep references to a model's own external-data file, not found here
    weights = target.with_name(f"{target.stem}.{os.getpid()}.data")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        options = session_options(ort, threads, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        options.optimized_model_filepath = str(temporary)
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", weights.name)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes",
                                         str(EXTERNAL_MIN_BYTES))
        _session(ort, model, options, providers)
        os.replace(temporary, target)
        _prune(target.parent)
        return True
    except Exception as error:  # noqa: BLE001 - the cache is an optimization, never a failure
        log.debug("not caching the optimized graph: %s", type(error).__name__)
        temporary.unlink(missing_ok=True)
        weights.unlink(missing_ok=True)
        return False


def create_session(model: str | Path, providers: Sequence[str], threads: int, use_cache: bool = True,
                   weights: str | Path | None = None) -> Any:
    """An ``ORT_ENABLE_ALL`` session for ``model``, from the cached optimized graph when possible.

    ``weights`` is the model's external-data file, if it has one (part of the cache key). Only CPU-only
    sessions use the cache (an optimized graph may hold provider-specific kernels). An entry is the graph
    and a ``.data`` file of its weights.
    """
    import onnxruntime as ort

    model = Path(model)
    full = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    directory = cache_dir() if use_cache and tuple(providers) == CPU_ONLY else None
    if directory is not None:
        cached = None
        try:
            key = _content_key(model, providers, ort.__version__, Path(weights) if weights else None)
            cached = directory / f"{model.stem}-{key}.onnx"
            if cached.is_file() or _write_optimized(ort, model, cached, providers, threads):
                session = _session(ort, cached, session_options(ort, threads, full), providers)
                os.utime(cached)  # most recently used: kept by _prune
                return session
        except Exception as error:  # noqa: BLE001 - a corrupt or unreadable entry: use the model itself
            log.debug("optimized-graph cache not used: %s", type(error).__name__)
            if cached is not None:
                try:
                    cached.unlink(missing_ok=True)
                except OSError:
                    pass
    return _session(ort, model, session_options(ort, threads, full), providers)


def _session(ort: Any, model: Path, options: Any, providers: Sequence[str]) -> Any:
    return ort.InferenceSession(str(model), sess_options=options, providers=list(providers),
                                disabled_optimizers=disabled_optimizers(providers))
