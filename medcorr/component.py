"""The ``medcorr`` spaCy component: finds suspicious clinical statements and proposes corrections.

Built like spaCy's own pipes: ``predict`` computes everything without touching the docs (sentence
boundaries, ONNX detector, lexicon candidates, generator proposals) and ``set_annotations`` writes the
results: ``doc._.medcorr`` (the :class:`~medcorr.finding.Verdict`), ``doc.spans[spans_key]`` with
``span._.medcorr`` (the :class:`~medcorr.finding.Finding`), and the same data as plain JSON in
``SpanGroup.attrs`` so that a ``DocBin`` round trip keeps it.
"""
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from spacy.attrs import IDX
from spacy.language import Language
from spacy.pipeline.pipe import Pipe
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from medcorr.candidates import types_for_kind
from medcorr.detector import META_FILE, TOKENIZER_FILE, NotePrediction, OnnxDetector
from medcorr.finding import ERROR_TYPES, ErrorType, Finding, Verdict
from medcorr.generators.base import CorrectionRequest, Generator, Proposal, substitute
from medcorr.registry import detectors
from medcorr.sentences import ClinicalSentencizer, write_sentence_starts
from medcorr.substitutions import SUBSTITUTIONS_FILE

VERDICT_ATTR = "medcorr.verdict"
MODES = ("verdict", "highlight")
SENTENCIZERS = ("medcorr", "pyrush")
DEFAULT_GENERATOR = {"@medcorr_generators": "medcorr.KnowledgeGenerator.v1"}


def _silence_pyrush() -> None:
    """PyRuSH logs token text at DEBUG through loguru: never let note text reach logs."""
    from loguru import logger

    logger.disable("PyRuSH")


def _verdict_getter(doc: Doc) -> Verdict | None:
    for group in doc.spans.values():
        data = group.attrs.get(VERDICT_ATTR)
        if data is not None:
            return Verdict.from_dict(data)
    return None


def _finding_getter(span: Span) -> Finding | None:
    verdict = _verdict_getter(span.doc)
    if verdict is None:
        return None
    for finding in verdict.findings:
        if finding.start == span.start_char and finding.end == span.end_char:
            return finding
    return None


def register_extensions() -> None:
    """``Doc._.medcorr`` and ``Span._.medcorr`` (idempotent)."""
    if not Doc.has_extension("medcorr"):
        Doc.set_extension("medcorr", getter=_verdict_getter)
    if not Span.has_extension("medcorr"):
        Span.set_extension("medcorr", getter=_finding_getter)


@detectors("medcorr.OnnxDetector.v1")
def onnx_detector_builder() -> Callable[..., OnnxDetector]:
    """Registered detector backend: builds an :class:`OnnxDetector` from the component's settings."""
    return OnnxDetector


@Language.factory(
    "medcorr",
    assigns=["doc._.medcorr", "span._.medcorr", "doc.spans", "token.is_sent_start"],
    default_config={
        "model_path": "",
        "threshold": None,
        "batch_size": 0,
        "max_length": 0,
        "providers": ["CPUExecutionProvider"],
        "num_threads": 0,
        "mode": "verdict",
        "spans_key": "medcorr",
        "respect_context": True,
        "sentencizer": "medcorr",
        "detector": {"@medcorr_detectors": "medcorr.OnnxDetector.v1"},
        "generator": DEFAULT_GENERATOR,
    },
)
def make_medcorr(nlp: Language, name: str, model_path: str, threshold: float | None, batch_size: int,
                 max_length: int, providers: list[str], num_threads: int, mode: str, spans_key: str,
                 respect_context: bool, sentencizer: str, detector: Callable[..., OnnxDetector],
                 generator: Generator | None) -> "MedcorrComponent":
    """Factory of the ``medcorr`` pipe (see :class:`MedcorrComponent` for the settings)."""
    return MedcorrComponent(
        nlp, name, model_path=model_path, threshold=threshold, batch_size=batch_size, max_length=max_length,
        providers=providers, num_threads=num_threads, mode=mode, spans_key=spans_key,
        respect_context=respect_context, sentencizer=sentencizer, detector_builder=detector, generator=generator,
    )


class MedcorrComponent(Pipe):
    """Clinical-note error detection and correction.

    Settings: ``model_path`` (a medcorr model directory; empty = the shipped model), ``threshold`` (verdict
    probability above which a note is flagged; None = the model's tuned threshold), ``batch_size`` (most
    encoder windows per ONNX call; 0 = one per call on CPU, which is fastest there and keeps a note's score
    independent of its batch mates, and 64 on CUDA), ``max_length`` (tokens per window, 0 = the model's), ``providers``
    (onnxruntime execution providers), ``num_threads`` (0 = all cores), ``mode`` (``verdict``: findings
    only for flagged notes; ``highlight``: always report the most suspicious span, flagged or not),
    ``spans_key``, ``respect_context`` (skip claims that medspaCy ConText marks as negated), ``sentencizer``
    (how a Doc without sentence boundaries is split: ``medcorr``, the fast clinical splitter of
    :mod:`medcorr.sentences`, or ``pyrush``, medspaCy's PyRuSH), ``generator`` (the correction backend, or None).
    """

    def __init__(self, nlp: Language, name: str = "medcorr", *, model_path: str = "", threshold: float | None = None,
                 batch_size: int = 0, max_length: int = 0, providers: Sequence[str] = ("CPUExecutionProvider",),
                 num_threads: int = 0, mode: str = "verdict", spans_key: str = "medcorr",
                 respect_context: bool = True, sentencizer: str = "medcorr",
                 detector_builder: Callable[..., OnnxDetector] = OnnxDetector,
                 generator: Generator | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if sentencizer not in SENTENCIZERS:
            raise ValueError(f"sentencizer must be one of {SENTENCIZERS}, got {sentencizer!r}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        register_extensions()
        _silence_pyrush()
        self.nlp = nlp
        self.name = name
        self.cfg: dict[str, Any] = {
            "model_path": model_path, "threshold": threshold, "batch_size": batch_size, "max_length": max_length,
            "providers": list(providers), "num_threads": num_threads, "mode": mode, "spans_key": spans_key,
            "respect_context": respect_context, "sentencizer": sentencizer,
        }
        self._detector_builder = detector_builder
        self.detector = self._build_detector(model_path or None)
        self.generator = generator
        if generator is not None and hasattr(generator, "bind"):
            generator.bind(self)
        self._sentencizer = None
        self._matcher = None

    def _build_detector(self, model_dir: str | Path | None) -> OnnxDetector:
        return self._detector_builder(
            model_dir, max_length=self.cfg["max_length"] or None, batch_size=self.cfg["batch_size"],
            providers=self.cfg["providers"], num_threads=self.cfg["num_threads"])

    # ----------------------------------------------------------------- properties
    @property
    def threshold(self) -> float:
        """The verdict threshold in force."""
        configured = self.cfg["threshold"]
        return self.detector.default_threshold if configured is None else float(configured)

    @property
    def model_version(self) -> str:
        """Version of the loaded detector model."""
        return self.detector.version

    @property
    def labels(self) -> tuple[str, ...]:
        """The span labels this component assigns."""
        return tuple(t.value for t in ERROR_TYPES)

    @property
    def sentencizer(self):
        """The splitter for Docs that arrive without sentence boundaries (``sentencizer`` setting)."""
        if self._sentencizer is None:
            if self.cfg["sentencizer"] == "pyrush":
                from PyRuSH import PyRuSHSentencizer

                self._sentencizer = PyRuSHSentencizer(self.nlp)
            else:
                self._sentencizer = ClinicalSentencizer(self.nlp)
        return self._sentencizer

    @property
    def matcher(self):
        """The lexicon candidate matcher (built on first use)."""
        if self._matcher is None:
            from medcorr.candidates import CandidateMatcher

            self._matcher = CandidateMatcher(self.nlp)
        return self._matcher

    # ----------------------------------------------------------------- spaCy API
    def __call__(self, doc: Doc) -> Doc:
        self.set_annotations([doc], self.predict([doc]))
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Annotate docs in batches, like ``predict`` + ``set_annotations`` per batch (same outputs).

        The ONNX detector of one batch runs in a worker thread while this thread pulls the next batch
        through the upstream components, tokenizes it for the model, queues its model calls behind the
        running ones and finishes the previous batch: onnxruntime releases the GIL, and medspaCy's PyRuSH
        and ConText are pure Python, so the two overlap instead of taking turns. (Tokenizing in a worker
        thread left the model idle while that thread waited for the GIL the upstream components hold.)
        """
        prepare = getattr(self.detector, "prepare", None)
        submit = getattr(self.detector, "submit", None)
        in_flight: list[tuple[list[Doc], list[list[tuple[int, int]]], Any]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medcorr-detector") as pool:
            try:
                for docs in minibatch(stream, size=batch_size):
                    spans = self._sentence_spans(docs)
                    notes = _notes(docs, spans)
                    if prepare is not None and submit is not None and notes:
                        # queued behind the previous batch's calls: the model threads go on without a gap
                        detection: Any = submit(prepare(notes))
                    else:  # a detector backend with predict() only
                        detection = pool.submit(self.detector.predict, notes)
                    in_flight.append((docs, spans, detection))
                    if len(in_flight) > 1:
                        yield from self._finish(*in_flight.pop(0))
                while in_flight:
                    yield from self._finish(*in_flight.pop(0))
            finally:  # the caller stopped early (or a batch failed): drop the model calls not yet started
                for _, _, detection in in_flight:
                    detection.cancel()

    def _finish(self, docs: list[Doc], spans: list[list[tuple[int, int]]], detection: Any) -> Iterator[Doc]:
        self.set_annotations(docs, self._decide(docs, spans, detection.result()))
        yield from docs

    def initialize(self, get_examples: Callable[[], Iterable] | None = None, *, nlp: Language | None = None) -> None:
        """Nothing to learn inside spaCy: the detector is trained with ``medcorr train``."""
        return None

    def predict(self, docs: Sequence[Doc]) -> list[tuple[list[tuple[int, int]], Verdict]]:
        """Sentence spans and the verdict (with findings and proposals) per doc; docs are not modified."""
        docs = list(docs)
        if not docs:
            return []
        sentence_spans = self._sentence_spans(docs)
        return self._decide(docs, sentence_spans, self.detector.predict(_notes(docs, sentence_spans)))

    def _decide(self, docs: Sequence[Doc], sentence_spans: list[list[tuple[int, int]]],
                predictions: Sequence[NotePrediction]) -> list[tuple[list[tuple[int, int]], Verdict]]:
        """Verdicts, findings and proposals from the detector's predictions."""
        verdicts = [self._verdict(doc, spans, prediction)
                    for doc, spans, prediction in zip(docs, sentence_spans, predictions)]
        self._propose(docs, sentence_spans, verdicts)
        return list(zip(sentence_spans, verdicts))

    def set_annotations(self, docs: Sequence[Doc], predictions: Sequence[tuple[list[tuple[int, int]], Verdict]]) -> None:
        """Write sentence boundaries (when the doc had none), spans, and the verdict."""
        for doc, (spans, verdict) in zip(docs, predictions):
            if not doc.has_annotation("SENT_START") and len(doc):
                _set_sentence_starts(doc, spans)
            group = [doc.char_span(f.start, f.end, label=f.type.value, alignment_mode="expand")
                     for f in verdict.findings]
            doc.spans[self.cfg["spans_key"]] = [span for span in group if span is not None]
            span_group = doc.spans[self.cfg["spans_key"]]
            span_group.attrs[VERDICT_ATTR] = verdict.to_dict()
            span_group.attrs["scores"] = [f.score for f in verdict.findings]
            span_group.attrs["medcorr.threshold"] = self.threshold
            span_group.attrs["medcorr.model_version"] = self.model_version

    # ----------------------------------------------------------------- internals
    def _sentence_spans(self, docs: Sequence[Doc]) -> list[list[tuple[int, int]]]:
        need_split = [doc for doc in docs if len(doc) and not doc.has_annotation("SENT_START")]
        guesses = dict(zip(map(id, need_split), self.sentencizer.predict(need_split))) if need_split else {}
        result = []
        for doc in docs:
            if not len(doc) or not doc.text.strip():
                result.append([])
            elif id(doc) in guesses:
                result.append(_spans_from_starts(doc, guesses[id(doc)]))
            else:
                result.append([(s.start_char, s.end_char) for s in doc.sents])
        return result

    def _verdict(self, doc: Doc, spans: list[tuple[int, int]], prediction: NotePrediction) -> Verdict:
        if not spans:
            return Verdict.empty()
        suspect = prediction.suspect
        score = prediction.score
        flag = score >= self.threshold
        verdict = Verdict(flag=flag, score=score, error_sentence=suspect if flag else -1, suspect_sentence=suspect,
                          suspect_score=float(prediction.location[suspect]))
        if not (flag or self.cfg["mode"] == "highlight"):
            return verdict
        finding = self._finding(doc, spans, prediction, suspect, score)
        if finding is None:  # the sentence's only claims are negated: not a claim to check
            verdict.flag, verdict.error_sentence = False, -1
        else:
            verdict.findings.append(finding)
        return verdict

    def _finding(self, doc: Doc, spans: list[tuple[int, int]], prediction: NotePrediction, sentence: int,
                 score: float) -> Finding | None:
        start, end = spans[sentence]
        offsets, probs = prediction.span_arrays((start, end))
        # the lexicon matcher reads only the suspect sentence (a fifth of the note's tokens, on MEDEC)
        sentence_span = doc.char_span(start, end, alignment_mode="expand")
        candidates = [c for c in self.matcher(sentence_span if sentence_span is not None else doc)
                      if c.start_char >= start and c.end_char <= end]
        if self.cfg["respect_context"]:
            negated = _negated_ranges(doc)
            kept = [c for c in candidates if not _inside_any(c.start_char, c.end_char, negated)]
            if candidates and not kept:
                return None
            candidates = kept
        allowed_types: tuple[ErrorType, ...] = ()
        if candidates:
            best = max(candidates,
                       key=lambda c: (_mean_score(offsets, probs, c.start_char, c.end_char), -c.start_char))
            span_start, span_end = best.start_char, best.end_char
            allowed_types = types_for_kind(best.kind)
        else:
            span_start, span_end = _span_from_tokens(offsets, probs, start, end)
        char_span = doc.char_span(span_start, span_end, alignment_mode="expand")
        if char_span is not None:
            span_start, span_end = char_span.start_char, char_span.end_char
        return Finding(start=span_start, end=span_end, text=doc.text[span_start:span_end],
                       type=prediction.error_type(sentence, allowed_types), score=score, sentence=sentence)

    def _propose(self, docs: Sequence[Doc], sentence_spans: list[list[tuple[int, int]]],
                 verdicts: list[Verdict]) -> None:
        if self.generator is None:
            return
        requests, owners = [], []
        for doc, spans, verdict in zip(docs, sentence_spans, verdicts):
            for finding in verdict.findings:
                requests.append(CorrectionRequest(doc.text, tuple(spans), finding, verdict.score))
                owners.append(verdict)
        if not requests:
            return
        proposals = self.generator(requests)
        for request, proposal, verdict in zip(requests, proposals, owners):
            _apply_proposal(request, proposal, verdict)
        for verdict in verdicts:
            if verdict.flag and not verdict.findings:
                verdict.flag, verdict.error_sentence = False, -1

    # ----------------------------------------------------------------- serialization
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write ``cfg.json`` and a copy of the model directory (ONNX, tokenizer, metadata)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "cfg.json").write_text(json.dumps(self.cfg, indent=2), encoding="utf-8")
        model_dir = path / "model"
        model_dir.mkdir(exist_ok=True)
        for name in (*self.detector.model_files, TOKENIZER_FILE, META_FILE, SUBSTITUTIONS_FILE):
            source = self.detector.model_dir / name
            if source.is_file() and source.resolve() != (model_dir / name).resolve():
                shutil.copy(source, model_dir / name)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "MedcorrComponent":
        """Load what :meth:`to_disk` wrote."""
        path = Path(path)
        self.cfg.update(json.loads((path / "cfg.json").read_text(encoding="utf-8")))
        self._sentencizer = None
        self.detector = self._build_detector(path / "model")
        if self.generator is not None and hasattr(self.generator, "bind"):
            self.generator.bind(self)
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        raise NotImplementedError("medcorr holds an ONNX model on disk: use nlp.to_disk / spacy.load")

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> "MedcorrComponent":
        raise NotImplementedError("medcorr holds an ONNX model on disk: use nlp.to_disk / spacy.load")


def _spans_from_starts(doc: Doc, starts: Sequence[bool]) -> list[tuple[int, int]]:
    """Sentence character spans from per-token sentence-start guesses (indices match ``doc.sents`` later)."""
    boundaries = [i for i, start in enumerate(starts) if start or i == 0] + [len(doc)]
    return [(doc[begin:finish].start_char, doc[begin:finish].end_char)
            for begin, finish in zip(boundaries, boundaries[1:]) if finish > begin]


def _notes(docs: Sequence[Doc], sentence_spans: Sequence[list[tuple[int, int]]]) -> list[tuple[str, list[tuple[int, int]]]]:
    return [(doc.text, spans) for doc, spans in zip(docs, sentence_spans)]


def _set_sentence_starts(doc: Doc, spans: Sequence[tuple[int, int]]) -> None:
    """Mark the tokens where ``spans`` start (and the first token) as sentence starts."""
    starts = np.isin(doc.to_array([IDX]).astype(np.int64).ravel(), [start for start, _ in spans])
    starts[0] = True
    write_sentence_starts(doc, starts)


def _negated_ranges(doc: Doc) -> list[tuple[int, int]]:
    """Character ranges in the scope of ConText negation modifiers (empty when ConText did not run)."""
    if not Doc.has_extension("context_graph") or doc._.context_graph is None:
        return []
    ranges = []
    for modifier in doc._.context_graph.modifiers:
        if modifier.category.upper() in {"NEGATED_EXISTENCE"}:
            scope = modifier.scope_span  # medspaCy 1.3: (start, end) token indices; older: a Span
            if isinstance(scope, tuple):
                scope = doc[scope[0]:scope[1]]
            ranges.append((scope.start_char, scope.end_char))
    return ranges


def _inside_any(start: int, end: int, ranges: Sequence[tuple[int, int]]) -> bool:
    return any(start >= r_start and end <= r_end for r_start, r_end in ranges)


def _mean_score(offsets: np.ndarray, probs: np.ndarray, start: int, end: int) -> float:
    """Mean span probability of the tokens overlapping ``[start, end)`` (0 when none do)."""
    inside = (offsets[:, 0] < end) & (offsets[:, 1] > start)
    return float(np.mean(probs[inside])) if inside.any() else 0.0


def _span_from_tokens(offsets: np.ndarray, probs: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """The contiguous run of high-scoring tokens around the best token; the sentence when none.

    ``offsets`` ``[n, 2]`` and ``probs`` ``[n]`` are the sentence's tokens in text order.
    """
    if not probs.size:
        return start, end
    best = int(np.argmax(probs))
    low = np.flatnonzero(probs < 0.5 * probs[best])
    before, after = low[low < best], low[low > best]
    left = int(before[-1]) + 1 if before.size else 0
    right = int(after[0]) - 1 if after.size else probs.size - 1
    return int(offsets[left, 0]), int(offsets[right, 1])


def _apply_proposal(request: CorrectionRequest, proposal: Proposal, verdict: Verdict) -> None:
    finding = request.finding
    if proposal.veto:
        verdict.findings.remove(finding)
        return
    finding.candidates = list(proposal.candidates)
    sentence_start = request.sentences[finding.sentence][0]
    if proposal.corrected_sentence:
        finding.corrected_sentence = proposal.corrected_sentence
        finding.correction = proposal.candidates[0][0] if proposal.candidates else None
    elif proposal.candidates:
        finding.correction = proposal.candidates[0][0]
        finding.corrected_sentence = substitute(
            request.sentence_text, finding.start - sentence_start, finding.end - sentence_start, finding.correction)
