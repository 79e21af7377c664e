"""The ONNX detector: runs the exported model with onnxruntime and decodes its outputs per note.

The model directory holds ``model.onnx``, ``tokenizer.json`` and ``medcorr_model.json`` (metadata: version,
maximum length, default threshold, training provenance). :func:`decode_outputs` is the one place where raw
logits become per-sentence probabilities; training-time evaluation uses it too.
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from medcorr.denormals import flush_denormals
from medcorr.encoding import Batch, NoteEncoder, SentenceSpans, Window, length_buckets
from medcorr.finding import ERROR_TYPES, ErrorType

LOCATION, VERDICT, TYPE_OFFSET = 0, 1, 2
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "medcorr_model.json"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
#: ``batch_size`` 0 picks these: on CPU one window per ONNX call is fastest (no padding) and makes a note's
#: int8 score independent of its batch mates (dynamic quantization scales activations per call); a GPU
#: needs batches to be busy.
AUTO_BATCH_SIZE = 0
CPU_BATCH_SIZE = 1
GPU_BATCH_SIZE = 64


def unpadded_name(graph_file: str) -> str:
    """The unpadded twin of a graph file: ``model.onnx`` → ``model.unpadded.onnx``
    (see :mod:`medcorr.train.unpadded`)."""
    return graph_file.removesuffix(".onnx") + ".unpadded.onnx"


def weights_name(graph_file: str) -> str:
    """The external-data file of a graph and of its unpadded twin: ``model[.unpadded].onnx`` → ``model.data``."""
    return graph_file.removesuffix(".onnx").removesuffix(".unpadded") + ".data"


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not every core of the machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_model_dir() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("medcorr") / "data" / "model"))


def _no_offsets() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def _no_probs() -> np.ndarray:
    return np.zeros(0, dtype=np.float64)


@dataclass
class NotePrediction:
    """Per-sentence outputs for one note.

    ``location`` is a distribution over sentences (where the note's checkable claim is); ``error`` the
    probability that each sentence is wrong; ``types`` the error-type distribution per sentence;
    ``token_offsets`` (``[N, 2]`` character ``(start, end)``, in text order) and ``token_probs`` (``[N]``)
    the erroneous-span probability of each token, kept as arrays so that decoding needs no per-token
    Python objects. :attr:`token_scores` gives them as ``(char_start, char_end, prob)`` tuples.
    """

    location: np.ndarray
    error: np.ndarray
    types: np.ndarray
    token_offsets: np.ndarray = field(default_factory=_no_offsets)
    token_probs: np.ndarray = field(default_factory=_no_probs)

    @property
    def suspect(self) -> int:
        """Index of the most suspicious sentence (-1 for a note without sentences)."""
        return int(np.argmax(self.location)) if self.location.size else -1

    @property
    def score(self) -> float:
        """The verdict: probability that the suspect sentence is an error."""
        return float(self.error[self.suspect]) if self.location.size else 0.0

    @property
    def token_scores(self) -> list[tuple[int, int, float]]:
        """Every token as ``(char_start, char_end, prob)``, in text order (built on each access)."""
        return _as_tuples(self.token_offsets, self.token_probs)

    def error_type(self, sentence: int, allowed: Sequence[ErrorType] = ()) -> ErrorType:
        """The most likely error type of a sentence; with ``allowed``, the most likely among those (a span
        that names an organism can only be a causal-organism error, whatever the type head prefers)."""
        probs = self.types[sentence]
        if allowed:
            return max(allowed, key=lambda error_type: float(probs[ERROR_TYPES.index(error_type)]))
        return ERROR_TYPES[int(np.argmax(probs))]

    def span_arrays(self, sentence_span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """``(offsets [n, 2], probs [n])`` of the tokens inside a character range."""
        start, end = sentence_span
        inside = (self.token_offsets[:, 0] >= start) & (self.token_offsets[:, 1] <= end)
        return self.token_offsets[inside], self.token_probs[inside]

    def span_scores(self, sentence_span: tuple[int, int]) -> list[tuple[int, int, float]]:
        """Token scores inside a character range, as ``(char_start, char_end, prob)``."""
        return _as_tuples(*self.span_arrays(sentence_span))

    @classmethod
    def empty(cls) -> "NotePrediction":
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, len(ERROR_TYPES))))


def _as_tuples(offsets: np.ndarray, probs: np.ndarray) -> list[tuple[int, int, float]]:
    return [(start, end, prob) for (start, end), prob in zip(offsets.tolist(), probs.tolist())]


def _softmax(values: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = values - values.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


@dataclass
class PreparedNotes:
    """Notes tokenized, windowed and collated for the model (:meth:`OnnxDetector.prepare`)."""

    windows_per_note: list[list[Window]]
    sentence_counts: list[int]
    batches: list[Batch]


class PendingPredictions:
    """Model calls queued by :meth:`OnnxDetector.submit`; :meth:`result` waits for them and decodes."""

    def __init__(self, prepared: PreparedNotes, futures: Sequence[Future]) -> None:
        self.prepared = prepared
        self._futures = list(futures)

    def cancel(self) -> None:
        """Drop the queued calls that have not started (running ones finish; their outputs are dropped)."""
        for future in self._futures:
            future.cancel()

    def result(self) -> list[NotePrediction]:
        """The predictions of the prepared notes (re-raises an exception of a model call, after dropping
        the calls that have not started)."""
        try:
            segment_logits, token_logits = strip_padding(future.result() for future in self._futures)
        except BaseException:
            self.cancel()
            raise
        return decode_outputs(self.prepared.windows_per_note, self.prepared.sentence_counts,
                              segment_logits, token_logits)


def _with_batch(run_batch: Callable[[Batch], tuple[np.ndarray, np.ndarray]], batch: Batch,
                ) -> tuple[Batch, tuple[np.ndarray, np.ndarray]]:
    return batch, run_batch(batch)


def _report_progress(futures: Sequence[Future], sizes: Sequence[int], progress: Callable[[int, int], None]) -> None:
    """Call ``progress(windows done, windows total)`` as each future ends (a failing callback is not raised)."""
    total = sum(sizes)
    lock = threading.Lock()
    done = [0]

    def finished(size: int) -> Callable[[Future], None]:
        def callback(_future: Future) -> None:
            with lock:
                done[0] += size
                count = done[0]
            progress(count, total)
        return callback

    for future, size in zip(futures, sizes):
        future.add_done_callback(finished(size))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def decode_outputs(windows_per_note: Sequence[Sequence[Window]], sentence_counts: Sequence[int],
                   segment_logits: dict[int, np.ndarray], token_logits: dict[int, np.ndarray]) -> list[NotePrediction]:
    """Combine per-window logits into per-note predictions.

    ``segment_logits[id(window)]`` is ``[segments, channels]`` and ``token_logits[id(window)]`` is
    ``[tokens]`` for that window (padding removed). A sentence split over several segments takes the
    maximum logit of its segments.
    """
    predictions = []
    for windows, n_sentences in zip(windows_per_note, sentence_counts):
        if not windows:
            predictions.append(NotePrediction.empty() if n_sentences == 0 else _no_token_prediction(n_sentences))
            continue
        sentence_logits = np.full((n_sentences, TYPE_OFFSET + len(ERROR_TYPES)), -np.inf, dtype=np.float64)
        offsets, probs = [], []
        for window in windows:
            np.maximum.at(sentence_logits, np.asarray(window.segment_sentences, dtype=np.intp),
                          segment_logits[id(window)].astype(np.float64))
            real = window.offsets[:, 0] >= 0
            offsets.append(window.offsets[real])
            probs.append(_sigmoid(token_logits[id(window)].astype(np.float64))[real])
        covered = np.isfinite(sentence_logits[:, LOCATION])
        location = np.zeros(n_sentences)
        location[covered] = _softmax(sentence_logits[covered, LOCATION])
        error = np.where(covered, _sigmoid(np.where(covered, sentence_logits[:, VERDICT], 0.0)), 0.0)
        types = np.full((n_sentences, len(ERROR_TYPES)), 1.0 / len(ERROR_TYPES))
        types[covered] = _softmax(sentence_logits[covered, TYPE_OFFSET:])
        token_offsets, token_probs = np.concatenate(offsets), np.concatenate(probs)
        order = np.lexsort((token_probs, token_offsets[:, 1], token_offsets[:, 0]))  # (start, end, prob) order
        predictions.append(NotePrediction(location, error, types, token_offsets[order], token_probs[order]))
    return predictions


def _no_token_prediction(n_sentences: int) -> NotePrediction:
    uniform = np.full((n_sentences, len(ERROR_TYPES)), 1.0 / len(ERROR_TYPES))
    return NotePrediction(np.zeros(n_sentences), np.zeros(n_sentences), uniform)


def run_in_batches(encoder: NoteEncoder, windows: Sequence[Window], batch_size: int,
                   run_batch: Callable[[Batch], tuple[np.ndarray, np.ndarray]], max_padding: float | None = None,
                   map_batches: Callable[..., Iterable[Any]] = map,
                   ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Length-bucket windows, run ``run_batch`` on each padded batch, and strip the padding again.

    Returns per-window ``segment_logits`` and ``token_logits`` keyed by ``id(window)``, the form
    :func:`decode_outputs` takes; shared by the ONNX detector and the PyTorch evaluation. ``map_batches``
    (an order-keeping ``map``) may run the batches concurrently.
    """
    batches = collate_buckets(encoder, windows, batch_size, max_padding)
    return strip_padding(map_batches(partial(_with_batch, run_batch), batches))


def collate_buckets(encoder: NoteEncoder, windows: Sequence[Window], batch_size: int,
                    max_padding: float | None = None) -> Iterator[Batch]:
    """The length-bucketed, padded model inputs of ``windows``, one batch at a time."""
    buckets = length_buckets(windows, batch_size, max_padding)
    return (encoder.collate([windows[i] for i in bucket]) for bucket in buckets)


def strip_padding(outputs: Iterable[tuple[Batch, tuple[np.ndarray, np.ndarray]]],
                  ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per-window ``segment_logits`` and ``token_logits`` keyed by ``id(window)``, padding removed."""
    segment_logits: dict[int, np.ndarray] = {}
    token_logits: dict[int, np.ndarray] = {}
    for batch, (seg, tok) in outputs:
        for row, window in enumerate(batch.windows):
            segment_logits[id(window)] = seg[row, : len(window.segment_sentences)]
            token_logits[id(window)] = tok[row, : window.length]
    return segment_logits, token_logits


def resolve_batch_size(batch_size: int | None, providers: Sequence[str]) -> int:
    """Windows per ONNX call: ``batch_size`` when positive, else the default for the first provider."""
    if batch_size:
        return max(1, int(batch_size))
    return GPU_BATCH_SIZE if providers and providers[0] == CUDA else CPU_BATCH_SIZE


def resolve_concurrent_calls(concurrent_calls: int, batch_size: int, providers: Sequence[str], threads: int) -> int:
    """ONNX calls at once: ``concurrent_calls`` when positive, else one per compute thread for one-window
    calls on CPU (small matrices leave intra-op threads idle) and 1 otherwise."""
    if concurrent_calls:
        return max(1, int(concurrent_calls))
    on_cpu = not providers or providers[0] != CUDA
    return max(1, threads) if on_cpu and batch_size == 1 else 1


def resolve_providers(providers: Sequence[str]) -> list[str]:
    """Check the requested onnxruntime providers; a clear error for CUDA without ``onnxruntime-gpu``."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    requested = list(providers) or [CPU]
    missing = [name for name in requested if name not in available]
    if CUDA in missing:
        raise RuntimeError(
            "CUDAExecutionProvider was requested but this onnxruntime has no CUDA support: "
            "pip install 'medcorr[gpu]' (onnxruntime-gpu, replacing onnxruntime) on a machine with CUDA"
        )
    if missing:
        raise RuntimeError(f"onnxruntime providers not available: {missing}; available: {sorted(available)}")
    return requested


class OnnxDetector:
    """The transformer detector exported to ONNX, run with onnxruntime.

    ``predict(notes)`` takes ``(text, sentence spans)`` pairs and returns one :class:`NotePrediction` each;
    all notes of the call are encoded into length-bucketed batches of ``batch_size`` windows (0: one
    window per call on CPU, 64 on CUDA; see :data:`AUTO_BATCH_SIZE`).
    ``max_padding`` (None: off) also closes a batch before its padding exceeds that fraction of its real
    tokens (see :func:`~medcorr.encoding.length_buckets`).

    ``concurrent_calls`` ONNX calls run at once, each with ``num_threads // concurrent_calls`` intra-op
    threads (0 = auto: on CPU with one window per call, one call per compute thread; otherwise 1). A
    one-window call's matrices are too small to keep two threads busy, so two single-threaded calls at once
    did 1.47x the windows/s of one two-threaded call on a 2-core machine; each window is computed exactly
    as before, so outputs are bit-identical.
    """

    def __init__(self, model_dir: str | Path | None = None, max_length: int | None = None,
                 batch_size: int = AUTO_BATCH_SIZE,
                 providers: Sequence[str] = (CPU,), num_threads: int = 0, model_file: str | None = None,
                 max_padding: float | None = None, concurrent_calls: int = 0):
        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        self.meta = self._read_meta(self.model_dir)
        self.max_length = int(max_length or self.meta.get("max_length", 512))
        self.providers = resolve_providers(providers)
        self.batch_size = resolve_batch_size(batch_size, self.providers)
        self.num_threads = int(num_threads)
        self.model_file = model_file or self.meta.get("model_file", MODEL_FILE)
        self.encoder = NoteEncoder(self.model_dir / TOKENIZER_FILE, self.max_length)
        self.max_padding = None if max_padding is None else max(0.0, float(max_padding))
        self.concurrent_calls = resolve_concurrent_calls(concurrent_calls, self.batch_size, self.providers,
                                                         self.num_threads or available_cores())
        self._sessions: dict[str, Any] = {}
        self._session_lock = threading.Lock()
        #: calls without padding run this graph when the model directory has it (one window per call)
        self.unpadded_file = unpadded_name(self.model_file) if self.batch_size == 1 else None
        if self.unpadded_file and not (self.model_dir / self.unpadded_file).is_file():
            self.unpadded_file = None
        # every model call runs in this pool (threads start on first use): its threads flush denormals, so
        # the caller's threads keep their floating-point mode
        self._pool = ThreadPoolExecutor(self.concurrent_calls, thread_name_prefix="medcorr-onnx",
                                        initializer=flush_denormals)
        #: Called as ``progress(windows_done, windows_total)`` each time a model call of :meth:`submit` ends
        #: (in a model thread); None (the default) for no reports. ``medcorr check`` uses it for long notes.
        self.progress: Callable[[int, int], None] | None = None

    @staticmethod
    def _read_meta(model_dir: Path) -> dict[str, Any]:
        meta_path = model_dir / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(f"not a medcorr model directory (no {META_FILE}): {model_dir}")
        return json.loads(meta_path.read_text(encoding="utf-8"))

    @property
    def version(self) -> str:
        """The model's version string (from its metadata)."""
        return str(self.meta.get("version", "unknown"))

    @property
    def default_threshold(self) -> float:
        """The verdict threshold chosen at training time."""
        return float(self.meta.get("threshold", 0.5))

    @property
    def session(self):
        """The onnxruntime session, created on first use (graph optimization cached per machine, see
        :mod:`medcorr.ort_cache`; intra-op threads = ``num_threads`` or every usable core).

        It is created once, on the first model call, so in a model thread: onnxruntime sets flush-to-zero in
        the thread that creates a process's first session.
        """
        return self._session_of(self.model_file)

    @property
    def model_files(self) -> list[str]:
        """The files of the model directory that the detector runs: graphs and their weights."""
        names = [self.model_file] + ([self.unpadded_file] if self.unpadded_file else [])
        return names + sorted({weights_name(n) for n in names if (self.model_dir / weights_name(n)).is_file()})

    def _session_of(self, graph_file: str) -> Any:
        session = self._sessions.get(graph_file)
        if session is None:
            from medcorr.ort_cache import create_session

            with self._session_lock:  # concurrent first calls make one session, not one each
                session = self._sessions.get(graph_file)
                if session is None:
                    threads = max(1, (self.num_threads or available_cores()) // self.concurrent_calls)
                    weights = self.model_dir / weights_name(graph_file)
                    session = create_session(self.model_dir / graph_file, self.providers, threads,
                                             weights=weights if weights.is_file() else None)
                    self._sessions[graph_file] = session
        return session

    def predict(self, notes: Sequence[tuple[str, SentenceSpans]]) -> list[NotePrediction]:
        """Predictions for each ``(text, sentence spans)`` note. No side effects; an empty list gives []."""
        if not notes:
            return []
        return self.run_prepared(self.prepare(notes))

    def prepare(self, notes: Sequence[tuple[str, SentenceSpans]]) -> PreparedNotes:
        """The Python half of :meth:`predict`: tokenize, window and collate the notes (no model call).

        A caller can prepare the next notes while :meth:`run_prepared` of the previous ones is in
        onnxruntime, which drops the GIL: the model threads then never wait for tokenization.
        """
        windows_per_note = self.encoder.encode_notes(notes)
        windows = [w for ws in windows_per_note for w in ws]
        return PreparedNotes(windows_per_note, [len(spans) for _, spans in notes],
                             list(collate_buckets(self.encoder, windows, self.batch_size, self.max_padding)))

    def run_prepared(self, prepared: PreparedNotes) -> list[NotePrediction]:
        """Run the model on prepared notes and decode the predictions (``predict = run_prepared ∘ prepare``)."""
        return self.submit(prepared).result()

    def submit(self, prepared: PreparedNotes) -> PendingPredictions:
        """Queue the model calls of prepared notes in the detector's call pool and return at once.

        ``.result()`` of the returned handle waits for them and decodes, giving what
        :meth:`run_prepared` gives. Calls queued by several ``submit`` run in order, so a caller that
        submits the next notes before it collects the previous ones keeps the model threads busy across
        the gap.
        """
        futures = [self._pool.submit(_with_batch, self.run_batch, batch) for batch in prepared.batches]
        if self.progress is not None:
            _report_progress(futures, [len(batch.input_ids) for batch in prepared.batches], self.progress)
        return PendingPredictions(prepared, futures)

    def run_windows(self, windows: Sequence[Window]) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Run the model over windows in length-bucketed batches; logits keyed by ``id(window)``."""
        # the pool's map keeps the order and runs ``concurrent_calls`` at once (onnxruntime drops the GIL)
        return run_in_batches(self.encoder, windows, self.batch_size, self.run_batch, self.max_padding,
                              self._pool.map)

    def run_batch(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """One onnxruntime call: ``(segment_logits, token_logits)``. A batch without padding runs the
        unpadded graph when there is one: the same outputs, bit for bit, without the attention masks."""
        unpadded = self.unpadded_file is not None and bool(batch.attention_mask.all())
        session = self._session_of(self.unpadded_file) if unpadded else self.session
        outputs = session.run(
            None,
            {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "segment_mask": batch.segment_mask},
        )
        return outputs[0], outputs[1]
