"""The example bank: solved notes retrieved by similarity and shown to a verifier as worked examples.

A language-model verifier judges a note better when its prompt holds a few solved notes that resemble it
(MEDEC: GPT-4.1 with 10 retrieved solved examples). :class:`ExampleBank` holds such notes as
:class:`SolvedExample` (sentences, error flag, type, error sentence, corrected sentence) with one embedding
each, and :meth:`ExampleBank.nearest` returns the ``k`` most similar to a note, never the note itself or
its near-duplicate twin.

**The shipped bank** (``medcorr/data/example_bank/``) holds the 574 public MEDEC-MS validation notes
(Ben Abacha et al., Findings of ACL 2025, CC BY 4.0; attribution in ``PROVENANCE.md`` there):

- ``examples.jsonl.gz``: one example per line (``id``, ``sentences``, ``has_error``, ``error_type`` in
  MEDEC's spelling or null, ``error_sentence`` as an index into ``sentences`` or -1,
  ``corrected_sentence`` or null, ``group``: the near-duplicate group, see below);
- ``embeddings.npy``: float16 ``[N, 384]``, row ``i`` the unit-length embedding of example ``i``;
- ``bank.json``: the header (format, count, provenance, the embedding model's version and fingerprint,
  the embedding recipe);
- ``PROVENANCE.md``: title, authors, link, licence and changes.

**Embeddings** come from the shipped detector's own encoder (:class:`NoteEmbedder`): the mean of the final
encoder hidden state (:data:`HIDDEN_STATE`) over every token of the note's first window (``[CLS]``, up to
``max_length - 2`` tokens, ``[SEP]``), scaled to unit length. The detector graph has no such output, so
:func:`build_embedding_graph` derives a graph that computes only that mean (``model.embed.onnx``, a few
hundred KB) and reads the same weights file (``model.data``) as the detector. A model directory without
that file (an older export, or your own) gets the graph built in memory when the ``onnx`` package is
importable; otherwise :class:`NoteEmbedder` raises an error that says how to build it.

**Near duplicates.** MEDEC pairs many error notes with a corrected twin of the same vignette. A query
excludes every bank entry whose word-trigram Jaccard with the query exceeds
:data:`~medcorr.train.folds.DUPLICATE_JACCARD` (the definition the grouped cross-validation uses), and
every entry of the same near-duplicate group as an excluded one.

**Your own bank**: :meth:`ExampleBank.from_medec_csv` reads a labelled MEDEC-format CSV and embeds its
notes with the same encoder; the embeddings are cached under the CSV's content hash in
``$MEDCORR_BANK_CACHE_DIR`` (empty value: no cache), else ``$XDG_CACHE_HOME/medcorr/banks`` or
``~/.cache/medcorr/banks``.

Rebuild the shipped bank and the shipped model's embedding graph::

    python -m medcorr.verifiers.bank build \\
        --medec ../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv \\
        --out medcorr/data/example_bank

Write the embedding graph into a model directory of your own (needs ``pip install onnx``)::

    python -m medcorr.verifiers.bank embed-graph --model-dir MODEL_DIR
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from medcorr.denormals import flush_denormals
from medcorr.detector import (
    CPU,
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    default_model_dir,
    unpadded_name,
    weights_name,
)
from medcorr.finding import ErrorType
from medcorr.train.folds import DUPLICATE_JACCARD, _shingles, near_duplicate_groups

#: The detector graph's final encoder hidden state, ``[1, L, 384]`` in the unpadded graph.
HIDDEN_STATE = "/encoder/encoder/layer.5/output/LayerNorm/LayerNormalization_output_0"
#: The derived embedding graph (in a model directory) and its one output, ``[1, hidden]``.
EMBED_FILE = "model.embed.onnx"
EMBED_OUTPUT = "embedding"
EMBEDDING_RECIPE = (
    "mean over all tokens of the first window ([CLS], up to max_length - 2 tokens of the note, [SEP]) of the "
    f"final encoder hidden state {HIDDEN_STATE} of the detector's unpadded int8 graph, scaled to unit length; "
    "a bank note's text is its sentences joined with single spaces"
)

BANK_FORMAT = 1
EXAMPLES_FILE = "examples.jsonl.gz"
EMBEDDINGS_FILE = "embeddings.npy"
HEADER_FILE = "bank.json"
PROVENANCE_FILE = "PROVENANCE.md"
BANK_CACHE_ENV = "MEDCORR_BANK_CACHE_DIR"

MEDEC_TITLE = "MEDEC: A Benchmark for Medical Error Detection and Correction in Clinical Notes"
MEDEC_AUTHORS = "Asma Ben Abacha, Wen-wai Yim, Yujuan Fu, Zhaoyi Sun, Meliha Yetisgen, Fei Xia, Thomas Lin"
MEDEC_VENUE = "Findings of ACL 2025, pages 22539-22550"
MEDEC_URL = "https://github.com/abachaa/MEDEC"
MEDEC_LICENCE = "Creative Commons Attribution 4.0 International (CC BY 4.0)"
MEDEC_LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
MEDEC_CHANGES = "sentences as published; embeddings computed by medcorr"
SHIPPED_PROVENANCE = (
    "MEDEC-MS validation set, Ben Abacha et al., Findings of ACL 2025, CC BY 4.0 "
    f"({MEDEC_URL}); changes: {MEDEC_CHANGES}"
)

_HASH_CHUNK = 1 << 20


class BankError(ValueError):
    """An example bank or bank CSV that cannot be used; the message says why and what to do."""


# ------------------------------------------------------------------------------------------ examples


@dataclass(frozen=True)
class SolvedExample:
    """One solved note: its sentences and the answer.

    ``error_sentence`` is an index into ``sentences`` (-1 when the note has no error);
    ``error_type`` and ``corrected_sentence`` are None when the note has no error (``error_type`` may also be
    None for an error note of a bank without types).
    """

    example_id: str
    sentences: tuple[str, ...]
    has_error: bool
    error_type: ErrorType | None
    error_sentence: int
    corrected_sentence: str | None

    def text(self) -> str:
        """The note: its sentences joined with single spaces."""
        return " ".join(self.sentences)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (``error_type`` in MEDEC's spelling)."""
        return {
            "id": self.example_id,
            "sentences": list(self.sentences),
            "has_error": self.has_error,
            "error_type": self.error_type.medec_name if self.error_type else None,
            "error_sentence": self.error_sentence,
            "corrected_sentence": self.corrected_sentence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SolvedExample":
        """The inverse of :meth:`to_dict`."""
        error_type = data.get("error_type")
        return cls(
            example_id=str(data["id"]),
            sentences=tuple(data["sentences"]),
            has_error=bool(data["has_error"]),
            error_type=ErrorType.from_medec(error_type) if error_type else None,
            error_sentence=int(data["error_sentence"]),
            corrected_sentence=data.get("corrected_sentence"),
        )


def examples_from_medec(csv_path: str | Path) -> list[SolvedExample]:
    """The solved examples of a labelled MEDEC-format CSV, in file order.

    Needs the columns ``Text ID``, ``Sentences``, ``Error Flag``, ``Error Sentence ID`` and
    ``Corrected Sentence`` (``Error Type`` is optional) and a label in every row; raises
    :class:`BankError` naming the file, row and column otherwise.
    """
    from medcorr.medec.io import (
        CORRECTED_SENTENCE,
        ERROR_FLAG,
        ERROR_SENTENCE_ID,
        NA,
        SENTENCES,
        MedecFormatError,
        normalize_space,
        read_medec,
    )

    required = (SENTENCES, ERROR_FLAG, ERROR_SENTENCE_ID, CORRECTED_SENTENCE)
    try:
        records = read_medec(csv_path, require=required)
    except MedecFormatError as error:
        raise BankError(f"not a labelled MEDEC bank: {error}; a bank needs the columns "
                        f"{', '.join(repr(c) for c in required)}") from None
    examples = []
    for record in records:
        where = f"{csv_path}: row {record.row}"
        if not record.sentences:
            raise BankError(f"{where}: empty 'Sentences'")
        if record.error_flag not in (0, 1):
            raise BankError(f"{where}: 'Error Flag' must be 0 or 1 in a bank, got {record.error_flag!r}")
        sentences = tuple(normalize_space(s.text) for s in record.sentences)
        if record.error_flag == 0:
            examples.append(SolvedExample(record.text_id, sentences, False, None, -1, None))
            continue
        ids = [s.id for s in record.sentences]
        if record.error_sentence_id not in ids:
            raise BankError(f"{where}: 'Error Sentence ID' {record.error_sentence_id!r} is not a sentence id")
        corrected = record.corrected_sentence
        if corrected is None or corrected == NA:
            raise BankError(f"{where}: an error note needs its 'Corrected Sentence'")
        try:
            error_type = ErrorType.from_medec(record.error_type) if record.error_type else None
        except KeyError:
            raise BankError(f"{where}: unknown 'Error Type' {record.error_type!r}") from None
        examples.append(SolvedExample(record.text_id, sentences, True, error_type,
                                      ids.index(record.error_sentence_id), corrected))
    if not examples:
        raise BankError(f"{csv_path}: no notes")
    return examples


# ----------------------------------------------------------------------------------- embedding graph


def _source_graph(model_dir: Path) -> Path:
    """The detector graph the embedding graph is derived from: the unpadded one when there is one."""
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    graph = str(meta.get("model_file", MODEL_FILE))
    unpadded = model_dir / unpadded_name(graph)
    return unpadded if unpadded.is_file() else model_dir / graph


def build_embedding_graph(source: str | Path) -> bytes:
    """The serialized embedding graph derived from a detector graph (needs the ``onnx`` package).

    Keeps the nodes that :data:`HIDDEN_STATE` depends on, adds its mean over the token axis as the one
    output :data:`EMBED_OUTPUT` (``[1, hidden]``), and keeps the weights where they are: initializers
    stored in an external-data file keep their references to it (relative to the graph's directory), so
    the result must sit beside the source graph or be loaded with that directory as its external-data
    folder. Deterministic: the same source gives the same bytes.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source), load_external_data=False)
    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    if HIDDEN_STATE not in producers:
        raise BankError(f"{source}: no tensor {HIDDEN_STATE!r}; not a medcorr MiniLM detector graph")
    needed: set[str] = set()
    kept: set[int] = set()
    stack = [HIDDEN_STATE]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        node = producers.get(name)
        if node is not None:
            kept.add(id(node))
            stack.extend(tensor for tensor in node.input if tensor)
            for attribute in node.attribute:
                if attribute.g.node or attribute.graphs:
                    raise BankError(f"{source}: control-flow node {node.name!r} is not supported")
    hidden = None
    for info in graph.value_info:
        if info.name == HIDDEN_STATE:
            hidden = info.type.tensor_type.shape.dim[-1].dim_value or None
    mean = helper.make_node("ReduceMean", [HIDDEN_STATE], [EMBED_OUTPUT], name="/medcorr/embedding/mean",
                            axes=[1], keepdims=0)
    derived = helper.make_graph(
        [node for node in graph.node if id(node) in kept] + [mean],
        "medcorr_embedding",
        [tensor for tensor in graph.input if tensor.name in needed],
        [helper.make_tensor_value_info(EMBED_OUTPUT, TensorProto.FLOAT, [1, hidden or "hidden"])],
        initializer=[tensor for tensor in graph.initializer if tensor.name in needed],
    )
    result = helper.make_model(derived, opset_imports=list(model.opset_import), ir_version=model.ir_version,
                               producer_name="medcorr.verifiers.bank", doc_string=EMBEDDING_RECIPE)
    return result.SerializeToString(deterministic=True)


def write_embedding_graph(model_dir: str | Path | None = None) -> Path:
    """Write :data:`EMBED_FILE` into a model directory (default: the shipped one), derived from its
    detector graph; returns its path. Needs the ``onnx`` package."""
    directory = Path(model_dir) if model_dir else default_model_dir()
    target = directory / EMBED_FILE
    data = build_embedding_graph(_source_graph(directory))
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)
    return target


def _onnx_importable() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def _file_digest(path: Path, digest: Any) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)


class NoteEmbedder:
    """Unit-length note embeddings from a medcorr model directory's encoder (default: the shipped one).

    Uses the directory's :data:`EMBED_FILE`; without it the graph is derived in memory from the detector
    graph when ``onnx`` is importable, else a :class:`BankError` says how to build it. One onnxruntime
    call per note (one window, no padding), in a thread of the embedder's own that flushes denormals,
    like the detector's calls. Thread-safe.
    """

    def __init__(self, model_dir: str | Path | None = None, num_threads: int = 1, max_length: int | None = None,
                 providers: Sequence[str] = (CPU,)) -> None:
        from medcorr.detector import resolve_providers
        from medcorr.encoding import NoteEncoder

        self.model_dir = Path(model_dir) if model_dir else default_model_dir()
        meta_path = self.model_dir / META_FILE
        if not meta_path.is_file():
            raise BankError(f"not a medcorr model directory (no {META_FILE}): {self.model_dir}")
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.max_length = int(max_length or self.meta.get("max_length", 512))
        self.providers = resolve_providers(providers)
        self.num_threads = max(1, int(num_threads))
        self.encoder = NoteEncoder(self.model_dir / TOKENIZER_FILE, self.max_length)
        graph = self.model_dir / EMBED_FILE
        if graph.is_file():
            self._graph_bytes = graph.read_bytes()
            self.graph_source = str(graph)
        elif _onnx_importable():
            self._graph_bytes = build_embedding_graph(_source_graph(self.model_dir))
            self.graph_source = f"derived in memory from {_source_graph(self.model_dir).name}"
        else:
            raise BankError(
                f"{self.model_dir} has no {EMBED_FILE} and the onnx package is not installed to derive it: "
                f"pip install onnx && python -m medcorr.verifiers.bank embed-graph --model-dir {self.model_dir}"
            )
        self._weights = self.model_dir / weights_name(_source_graph(self.model_dir).name)
        self._session: Any = None
        self._fingerprint: str | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="medcorr-embed", initializer=flush_denormals)

    @property
    def version(self) -> str:
        """The model's version string (from its metadata)."""
        return str(self.meta.get("version", "unknown"))

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the embedding graph, its weights file and the maximum length: equal fingerprints
        give equal embeddings."""
        if self._fingerprint is None:
            digest = hashlib.sha256(self._graph_bytes)
            if self._weights.is_file():
                _file_digest(self._weights, digest)
            digest.update(f"|max_length={self.max_length}".encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def _session_or_create(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort

                    from medcorr.ort_cache import disabled_optimizers, session_options

                    options = session_options(ort, self.num_threads)  # denormals flushed, no spinning
                    options.add_session_config_entry("session.model_external_initializers_file_folder_path",
                                                     str(self.model_dir))
                    self._session = ort.InferenceSession(self._graph_bytes, sess_options=options,
                                                         providers=list(self.providers),
                                                         disabled_optimizers=disabled_optimizers(self.providers))
        return self._session

    def input_ids(self, text: str) -> np.ndarray:
        """``[1, T]`` token ids of the note's first window (``[CLS]`` ... ``[SEP]``); a note without tokens
        gives ``[CLS] [SEP]``."""
        windows = self.encoder.encode_notes([(text, [(0, len(text))])])[0]
        if windows:
            return windows[0].input_ids[None, :]
        return np.asarray([[self.encoder.cls_id, self.encoder.sep_id]], dtype=np.int64)

    def _run(self, ids: np.ndarray) -> np.ndarray:
        session = self._session_or_create()
        feeds: dict[str, np.ndarray] = {}
        for graph_input in session.get_inputs():
            if graph_input.name == "input_ids":
                feeds["input_ids"] = ids
            elif graph_input.name == "attention_mask":
                feeds["attention_mask"] = np.ones_like(ids)
            else:
                raise BankError(f"embedding graph input {graph_input.name!r} is not supported")
        vector = session.run([EMBED_OUTPUT], feeds)[0][0].astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed(self, text: str) -> np.ndarray:
        """The unit-length float32 embedding of one note."""
        return self._pool.submit(self._run, self.input_ids(text)).result()

    def embed_many(self, texts: Iterable[str]) -> np.ndarray:
        """``[N, hidden]`` float32 embeddings, one note per model call (tokenization overlaps the calls)."""
        futures = [self._pool.submit(self._run, self.input_ids(text)) for text in texts]
        if not futures:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([future.result() for future in futures])


# --------------------------------------------------------------------------------------------- bank


def bank_cache_dir() -> Path | None:
    """Where embeddings of user banks are cached, or None when caching is switched off."""
    from medcorr.ort_cache import user_cache_dir

    return user_cache_dir(BANK_CACHE_ENV, "banks")


def default_bank_dir() -> Path:
    """The example bank shipped inside the package."""
    return Path(str(resources.files("medcorr") / "data" / "example_bank"))


class ExampleBank:
    """Solved examples with embeddings; :meth:`nearest` retrieves the most similar to a note.

    ``encoder`` (in :meth:`load` and :meth:`from_medec_csv`) is a :class:`NoteEmbedder`, a model directory,
    or None for the shipped model; it is created on the first query. When its fingerprint differs from the
    one the stored embeddings were made with, the bank's notes are embedded again with it (cached), so
    queries and bank always share one encoder.
    """

    def __init__(self, examples: Sequence[SolvedExample], embeddings: np.ndarray | None, provenance: str,
                 encoder: NoteEmbedder | str | Path | None = None, embedding_fingerprint: str | None = None,
                 groups: Sequence[int] | None = None, cache_key: str | None = None) -> None:
        self.examples: tuple[SolvedExample, ...] = tuple(examples)
        ids = [e.example_id for e in self.examples]
        if len(set(ids)) != len(ids):
            raise BankError("duplicate example ids in the bank")
        self.provenance = provenance
        self._embeddings = embeddings
        self._embedding_fingerprint = embedding_fingerprint
        self._encoder_arg = encoder
        self._encoder: NoteEmbedder | None = encoder if isinstance(encoder, NoteEmbedder) else None
        self._groups = np.asarray(groups if groups is not None else near_duplicate_groups(
            [e.text() for e in self.examples]), dtype=np.int64)
        self._cache_key = cache_key
        self._postings: dict[tuple[str, str, str], np.ndarray] = {}
        self._shingle_counts = np.zeros(0, dtype=np.int64)
        self._id_rank = np.zeros(0, dtype=np.intp)
        self._ready = False
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.examples)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path | None = None, encoder: NoteEmbedder | str | Path | None = None,
             ) -> "ExampleBank":
        """A bank directory written by :func:`write_bank` (default: the shipped MEDEC-MS bank)."""
        directory = Path(path) if path else default_bank_dir()
        header_path = directory / HEADER_FILE
        if not header_path.is_file():
            raise BankError(f"not an example bank (no {HEADER_FILE}): {directory}")
        header = json.loads(header_path.read_text(encoding="utf-8"))
        if header.get("format") != BANK_FORMAT:
            raise BankError(f"{directory}: bank format {header.get('format')!r}, this medcorr reads {BANK_FORMAT}")
        with gzip.open(directory / EXAMPLES_FILE, "rt", encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        embeddings = np.load(directory / EMBEDDINGS_FILE).astype(np.float32)
        if embeddings.shape[0] != len(rows) or len(rows) != header.get("count"):
            raise BankError(f"{directory}: {len(rows)} examples, {embeddings.shape[0]} embeddings, "
                            f"header count {header.get('count')}")
        return cls([SolvedExample.from_dict(row) for row in rows], embeddings, str(header["provenance"]),
                   encoder=encoder, embedding_fingerprint=header["embedding"]["fingerprint"],
                   groups=[int(row["group"]) for row in rows], cache_key=header.get("source_sha256"))

    @classmethod
    def from_medec_csv(cls, csv_path: str | Path, encoder: NoteEmbedder | str | Path | None = None,
                       provenance: str | None = None) -> "ExampleBank":
        """A bank of your own labelled MEDEC-format CSV (see :func:`examples_from_medec`); its notes are
        embedded on the first query (cached by the CSV's content hash, see :func:`bank_cache_dir`)."""
        path = Path(csv_path)
        examples = examples_from_medec(path)
        digest = hashlib.sha256()
        _file_digest(path, digest)
        return cls(examples, None, provenance or f"example bank {path.name} (sha256 {digest.hexdigest()[:12]})",
                   encoder=encoder, cache_key=digest.hexdigest())

    # ------------------------------------------------------------------ embeddings

    @property
    def encoder(self) -> NoteEmbedder:
        """The note embedder of this bank's queries (created on first use)."""
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = NoteEmbedder(self._encoder_arg)
        return self._encoder

    @property
    def embeddings(self) -> np.ndarray:
        """``[N, hidden]`` float32 unit-length embeddings, made with :attr:`encoder`."""
        self._prepare()
        assert self._embeddings is not None
        return self._embeddings

    def _prepare(self) -> None:
        if self._ready:
            return
        encoder = self.encoder
        with self._lock:
            if self._ready:
                return
            if self._embeddings is None or self._embedding_fingerprint != encoder.fingerprint:
                self._embeddings = self._embed_bank(encoder)
                self._embedding_fingerprint = encoder.fingerprint
            postings: dict[tuple[str, str, str], list[int]] = {}
            sizes = []
            for index, example in enumerate(self.examples):
                grams = _shingles(example.text())
                sizes.append(len(grams))
                for gram in grams:
                    postings.setdefault(gram, []).append(index)
            self._postings = {gram: np.asarray(indices, dtype=np.intp) for gram, indices in postings.items()}
            self._shingle_counts = np.asarray(sizes, dtype=np.int64)
            ids = [e.example_id for e in self.examples]
            self._id_rank = np.argsort(np.argsort(np.asarray(ids, dtype=object), kind="stable"), kind="stable")
            self._ready = True

    def _embed_bank(self, encoder: NoteEmbedder) -> np.ndarray:
        directory = bank_cache_dir()
        cache = None
        if directory is not None and self._cache_key:
            cache = directory / f"{self._cache_key[:32]}-{encoder.fingerprint[:32]}.npy"
            try:
                cached = np.load(cache)
                if cached.shape[0] == len(self.examples):
                    return cached.astype(np.float32)
            except (OSError, ValueError):
                pass
        # kept as float16, like a shipped bank: a cached and a fresh embedding give the same similarities
        stored = encoder.embed_many(e.text() for e in self.examples).astype(np.float16)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp.npy")
                np.save(temporary, stored)
                os.replace(temporary, cache)
            except OSError:
                pass  # the cache is an optimization, never a failure
        return stored.astype(np.float32)

    # ------------------------------------------------------------------ retrieval

    def excluded(self, note_text: str) -> np.ndarray:
        """Boolean mask of the entries a query for ``note_text`` never returns: near duplicates of the
        note (word-trigram Jaccard above the threshold) and their whole near-duplicate groups."""
        self._prepare()
        query = _shingles(note_text)
        common = np.zeros(len(self.examples), dtype=np.int64)
        for gram in query:  # an inverted index: only entries that share a trigram are counted
            hits = self._postings.get(gram)
            if hits is not None:
                common[hits] += 1
        union = len(query) + self._shingle_counts - common
        close = (common > 0) & (common > DUPLICATE_JACCARD * union)
        return np.isin(self._groups, self._groups[close]) if close.any() else close

    def nearest_scored(self, note_text: str, k: int, balance: bool = True) -> list[tuple[SolvedExample, float]]:
        """:meth:`nearest` with the cosine similarity of each example to the note."""
        if k <= 0:
            return []
        self._prepare()
        query = self.encoder.embed(note_text)
        similarity = self.embeddings @ query
        allowed = np.flatnonzero(~self.excluded(note_text))
        # most similar first; equal similarities in example-id order
        order = allowed[np.lexsort((self._id_rank[allowed], -similarity[allowed]))].tolist()
        if balance:
            errors = [i for i in order if self.examples[i].has_error]
            clean = [i for i in order if not self.examples[i].has_error]
            take_errors = min(len(errors), max(math.ceil(k / 2), k - len(clean)))
            chosen = set(errors[:take_errors]) | set(clean[: k - take_errors])
            order = [i for i in order if i in chosen]
        return [(self.examples[i], float(similarity[i])) for i in order[:k]]

    def nearest(self, note_text: str, k: int, balance: bool = True) -> list[SolvedExample]:
        """The ``k`` bank examples most similar to a note, most similar first (ties by example id).

        Never the note itself, its near duplicates or their near-duplicate groups (see :meth:`excluded`).
        With ``balance``, ``ceil(k / 2)`` are error notes and the rest notes without an error (the nearest
        of each kind; when one kind runs short the other fills in); without it, the nearest of any kind.
        """
        return [example for example, _ in self.nearest_scored(note_text, k, balance)]


# --------------------------------------------------------------------------------------------- build


def provenance_markdown(source_name: str, count: int, errors: int) -> str:
    """The attribution file of the shipped bank."""
    return f"""# Example bank: provenance and licence

`examples.jsonl.gz` and `embeddings.npy` hold the {count} notes ({errors} with one error, {count - errors}
without) of the MEDEC-MS validation set (`{source_name}`), the public data of the MEDEC benchmark.

- Title: "{MEDEC_TITLE}"
- Authors: {MEDEC_AUTHORS}
- Published in: {MEDEC_VENUE}
- Source: {MEDEC_URL}
- Licence: {MEDEC_LICENCE}, {MEDEC_LICENCE_URL}
- Changes: {MEDEC_CHANGES}. Each note is stored as its published `Sentences` (whitespace runs collapsed to one
  space), with its published labels (error flag, error type, error sentence as an index into the sentences,
  corrected sentence). The embeddings are computed by medcorr from the notes with the shipped detector's
  encoder ({EMBEDDING_RECIPE}).

Rebuild: `python -m medcorr.verifiers.bank build --medec {source_name} --out medcorr/data/example_bank`.
"""


def write_bank(examples: Sequence[SolvedExample], embeddings: np.ndarray, out: str | Path, provenance: str,
               embedder: NoteEmbedder, source_sha256: str, provenance_md: str | None = None) -> Path:
    """Write a bank directory (examples, float16 embeddings, header, optional ``PROVENANCE.md``)."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    groups = near_duplicate_groups([e.text() for e in examples])
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as handle:  # mtime 0: same bytes
        for example, group in zip(examples, groups):
            row = dict(example.to_dict(), group=int(group))
            handle.write((json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))
    (directory / EXAMPLES_FILE).write_bytes(buffer.getvalue())
    np.save(directory / EMBEDDINGS_FILE, embeddings.astype(np.float16))
    header = {
        "format": BANK_FORMAT,
        "count": len(examples),
        "errors": sum(e.has_error for e in examples),
        "provenance": provenance,
        "source_sha256": source_sha256,
        "embedding": {
            "model_version": embedder.version,
            "model_backbone": embedder.meta.get("backbone"),
            "fingerprint": embedder.fingerprint,
            "graph": EMBED_FILE,
            "dim": int(embeddings.shape[1]),
            "dtype": "float16",
            "max_length": embedder.max_length,
            "recipe": EMBEDDING_RECIPE,
        },
        "near_duplicates": f"word-trigram Jaccard > {DUPLICATE_JACCARD} (medcorr.train.folds)",
    }
    (directory / HEADER_FILE).write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
    if provenance_md is not None:
        (directory / PROVENANCE_FILE).write_text(provenance_md, encoding="utf-8")
    return directory


def build_bank(medec_csv: str | Path, out: str | Path, model_dir: str | Path | None = None,
               write_graph: bool = True) -> Path:
    """Build the shipped bank from the MEDEC-MS validation CSV; with ``write_graph`` first (re)write the
    model directory's :data:`EMBED_FILE`, so the bank's embeddings and the shipped graph match."""
    if write_graph:
        write_embedding_graph(model_dir)
    embedder = NoteEmbedder(model_dir)
    examples = examples_from_medec(medec_csv)
    embeddings = embedder.embed_many(e.text() for e in examples)
    digest = hashlib.sha256()
    _file_digest(Path(medec_csv), digest)
    markdown = provenance_markdown(Path(medec_csv).name, len(examples), sum(e.has_error for e in examples))
    return write_bank(examples, embeddings, out, SHIPPED_PROVENANCE, embedder, digest.hexdigest(), markdown)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medcorr.verifiers.bank build|embed-graph``."""
    parser = argparse.ArgumentParser(prog="python -m medcorr.verifiers.bank", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build an example bank (and the model's embedding graph)")
    build.add_argument("--medec", required=True, help="labelled MEDEC-format CSV")
    build.add_argument("--out", required=True, help="bank directory to write (e.g. medcorr/data/example_bank)")
    build.add_argument("--model-dir", default=None, help="medcorr model directory (default: the shipped model)")
    build.add_argument("--keep-graph", action="store_true",
                       help=f"use the model directory's {EMBED_FILE} as it is instead of rewriting it")
    graph = commands.add_parser("embed-graph", help=f"write {EMBED_FILE} into a model directory")
    graph.add_argument("--model-dir", default=None, help="medcorr model directory (default: the shipped model)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            directory = build_bank(args.medec, args.out, args.model_dir, write_graph=not args.keep_graph)
            print(f"wrote {directory}")
        else:
            print(f"wrote {write_embedding_graph(args.model_dir)}")
    except (BankError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
