"""The ``medcorr`` spaCy component: ranks a note's claims to check and asserts errors only with evidence.

The flow: sentences -> claims (the ONNX detector's localiser, :mod:`medcorr.claims`) -> evidence (the
sources allowed to judge, :mod:`medcorr.evidence`) -> the verdict. Built like spaCy's own pipes:
``predict`` computes everything without touching the docs and ``set_annotations`` writes the results:
``doc._.medcorr`` (the :class:`~medcorr.finding.Verdict`), ``doc.spans[spans_key]`` (asserted errors) and
``doc.spans[spans_key + "_claims"]`` (claims to double-check), ``span._.medcorr`` (the
:class:`~medcorr.finding.Finding`), and the same data as plain JSON in ``SpanGroup.attrs`` so that a
``DocBin`` round trip keeps it.
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

from medcorr.checks import CheckResult, EvidenceChecks
from medcorr.checks.checks import MEASURED as CHECKS_MEASURED
from medcorr.claims import DEFAULT_MAX_CLAIMS, rank_claims
from medcorr.context import context_scopes
from medcorr.detector import META_FILE, TOKENIZER_FILE, NotePrediction, OnnxDetector
from medcorr.evidence import DetectorHead, Judgement, combine
from medcorr.finding import ERROR_TYPES, Evidence, Finding, Role, SourceKind, SpanBasis, Verdict
from medcorr.generators.base import CorrectionRequest, Generator
from medcorr.registry import detectors
from medcorr.screening import DEFAULT_MAX_NOTE_CHARS, Screen, screen
from medcorr.sentences import ClinicalSentencizer, write_sentence_starts
from medcorr.substitutions import SUBSTITUTIONS_FILE
from medcorr.verifiers.bank import EMBED_FILE
from medcorr.verifiers.base import VerificationRequest, Verifier

VERDICT_ATTR = "medcorr.verdict"
SENTENCIZERS = ("medcorr", "pyrush")
DEFAULT_GENERATOR = {"@medcorr_generators": "medcorr.KnowledgeGenerator.v1"}
DEFAULT_CHECKS = {"@medcorr_checks": "medcorr.EvidenceChecks.v1"}
#: Why a note with claims has no verdict when no judging source is configured.
UNJUDGED_REASON = ("no verifier or check judged this note and the detector's verdict head lacks measured "
                   "discrimination: the claims are places to double-check, not asserted errors")
#: Claims shown to a verifier by default: on MEDEC-MS the error sentence is among the localiser's top 2
#: sentences in 98.7 % of error notes (top 1: 92.7 %; grouped 5-fold CV, onnx/cv-medec-ms-validation.json).
DEFAULT_VERIFY_TOP_K = 2


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
    """The asserted error at this span, else the claim at this span, else None."""
    verdict = _verdict_getter(span.doc)
    if verdict is None:
        return None
    for finding in (*verdict.findings, *verdict.claims):
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
        "max_claims": DEFAULT_MAX_CLAIMS,
        "max_note_chars": DEFAULT_MAX_NOTE_CHARS,
        "check_language": True,
        "batch_size": 0,
        "max_length": 0,
        "providers": ["CPUExecutionProvider"],
        "num_threads": 0,
        "spans_key": "medcorr",
        "respect_context": True,
        "sentencizer": "medcorr",
        "detector": {"@medcorr_detectors": "medcorr.OnnxDetector.v1"},
        "generator": DEFAULT_GENERATOR,
        "checks": DEFAULT_CHECKS,
        "verifier": None,
        "verify_top_k": DEFAULT_VERIFY_TOP_K,
    },
)
def make_medcorr(nlp: Language, name: str, model_path: str, threshold: float | None, max_claims: int,
                 max_note_chars: int, check_language: bool, batch_size: int, max_length: int,
                 providers: list[str], num_threads: int, spans_key: str, respect_context: bool, sentencizer: str,
                 detector: Callable[..., OnnxDetector], generator: Generator | None,
                 checks: EvidenceChecks | None, verifier: Verifier | None, verify_top_k: int) -> "MedcorrComponent":
    """Factory of the ``medcorr`` pipe (see :class:`MedcorrComponent` for the settings)."""
    return MedcorrComponent(
        nlp, name, model_path=model_path, threshold=threshold, max_claims=max_claims,
        max_note_chars=max_note_chars, check_language=check_language, batch_size=batch_size,
        max_length=max_length, providers=providers, num_threads=num_threads, spans_key=spans_key,
        respect_context=respect_context, sentencizer=sentencizer, detector_builder=detector, generator=generator,
        checks=checks, verifier=verifier, verify_top_k=verify_top_k,
    )


class MedcorrComponent(Pipe):
    """Clinical-note claim localisation and evidence-backed error detection.

    Settings: ``model_path`` (a medcorr model directory; empty = the shipped model); ``threshold`` (None:
    the detector's verdict head judges notes only when its model records a cross-validated verdict AUC of
    at least :data:`medcorr.evidence.DETECTOR_AUC_FLOOR`; a number forces the head on at that threshold,
    with a warning naming its AUC); ``max_claims`` (claims reported per note, best first);
    ``max_note_chars`` (longer notes get status ``too_long``; 0 = no limit); ``check_language`` (notes
    that are confidently not English get status ``not_english``); ``batch_size`` (most encoder windows per
    ONNX call; 0 = one per call on CPU, 64 on CUDA); ``max_length`` (tokens per window, 0 = the model's);
    ``providers`` (onnxruntime execution providers); ``num_threads`` (0 = all cores); ``spans_key``
    (asserted errors in ``doc.spans[spans_key]``, claims in ``doc.spans[spans_key + "_claims"]``);
    ``respect_context`` (skip claims that medspaCy ConText marks as negated); ``sentencizer`` (how a Doc
    without sentence boundaries is split: ``medcorr`` or ``pyrush``); ``generator`` (lexicon alternatives
    shown to reviewers beside each claim, or None); ``checks`` (:mod:`medcorr.checks`: conflicts the note
    itself proves, such as a drug of a class the patient is allergic to; each fired check asserts an error
    with both spans as evidence; None = off); ``verifier`` (a :mod:`medcorr.verifiers` backend that
    judges every note with claims, one request per note, or None); ``verify_top_k`` (claims shown to the
    verifier: the error sentence is among the top 2 in 98.7 % of MEDEC-MS error notes, cross-validated).
    """

    def __init__(self, nlp: Language, name: str = "medcorr", *, model_path: str = "", threshold: float | None = None,
                 max_claims: int = DEFAULT_MAX_CLAIMS, max_note_chars: int = DEFAULT_MAX_NOTE_CHARS,
                 check_language: bool = True, batch_size: int = 0, max_length: int = 0,
                 providers: Sequence[str] = ("CPUExecutionProvider",), num_threads: int = 0,
                 spans_key: str = "medcorr", respect_context: bool = True, sentencizer: str = "medcorr",
                 detector_builder: Callable[..., OnnxDetector] = OnnxDetector,
                 generator: Generator | None = None, checks: EvidenceChecks | None = None,
                 verifier: Verifier | None = None, verify_top_k: int = DEFAULT_VERIFY_TOP_K):
        if sentencizer not in SENTENCIZERS:
            raise ValueError(f"sentencizer must be one of {SENTENCIZERS}, got {sentencizer!r}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if max_claims < 1:
            raise ValueError(f"max_claims must be at least 1, got {max_claims}")
        if verify_top_k < 1:
            raise ValueError(f"verify_top_k must be at least 1, got {verify_top_k}")
        if max_note_chars < 0:
            raise ValueError(f"max_note_chars must be 0 (no limit) or positive, got {max_note_chars}")
        register_extensions()
        _silence_pyrush()
        self.nlp = nlp
        self.name = name
        self.cfg: dict[str, Any] = {
            "model_path": model_path, "threshold": threshold, "max_claims": max_claims,
            "max_note_chars": max_note_chars, "check_language": check_language, "batch_size": batch_size,
            "max_length": max_length, "providers": list(providers), "num_threads": num_threads,
            "spans_key": spans_key, "respect_context": respect_context, "sentencizer": sentencizer,
            "verify_top_k": verify_top_k,
        }
        self._detector_builder = detector_builder
        self.detector = self._build_detector(model_path or None)
        self.head = DetectorHead(self.detector.meta, threshold)
        self.generator = generator
        if generator is not None and hasattr(generator, "bind"):
            generator.bind(self)
        self.checks = checks
        self.verifier = verifier
        self._sentencizer = None
        self._matcher = None

    def _build_detector(self, model_dir: str | Path | None) -> OnnxDetector:
        return self._detector_builder(
            model_dir, max_length=self.cfg["max_length"] or None, batch_size=self.cfg["batch_size"],
            providers=self.cfg["providers"], num_threads=self.cfg["num_threads"])

    # ----------------------------------------------------------------- properties
    @property
    def threshold(self) -> float:
        """The detector head's verdict threshold (used only when the head is trusted, see ``head``)."""
        return self.head.threshold

    @property
    def model_version(self) -> str:
        """Version of the loaded detector model."""
        return self.detector.version

    @property
    def labels(self) -> tuple[str, ...]:
        """The span labels this component assigns."""
        return tuple(t.value for t in ERROR_TYPES)

    @property
    def claims_key(self) -> str:
        """The ``doc.spans`` key of the claims to double-check."""
        return f"{self.cfg['spans_key']}_claims"

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
        in_flight: list[tuple[list[Doc], list[list[tuple[int, int]]], list[Screen | None], Any]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medcorr-detector") as pool:
            try:
                for docs in minibatch(stream, size=batch_size):
                    screens = self._screens(docs)
                    spans = self._sentence_spans(docs, screens)
                    notes = _notes(docs, spans)
                    if prepare is not None and submit is not None and notes:
                        # queued behind the previous batch's calls: the model threads go on without a gap
                        detection: Any = submit(prepare(notes))
                    else:  # a detector backend with predict() only
                        detection = pool.submit(self.detector.predict, notes)
                    in_flight.append((docs, spans, screens, detection))
                    if len(in_flight) > 1:
                        yield from self._finish(*in_flight.pop(0))
                while in_flight:
                    yield from self._finish(*in_flight.pop(0))
            finally:  # the caller stopped early (or a batch failed): drop the model calls not yet started
                for *_, detection in in_flight:
                    detection.cancel()

    def _finish(self, docs: list[Doc], spans: list[list[tuple[int, int]]], screens: list[Screen | None],
                detection: Any) -> Iterator[Doc]:
        self.set_annotations(docs, self._decide(docs, spans, screens, detection.result()))
        yield from docs

    def initialize(self, get_examples: Callable[[], Iterable] | None = None, *, nlp: Language | None = None) -> None:
        """Nothing to learn inside spaCy: the detector is trained with ``medcorr train``."""
        return None

    def predict(self, docs: Sequence[Doc]) -> list[tuple[list[tuple[int, int]], Verdict]]:
        """Sentence spans and the verdict (claims, judgements, findings) per doc; docs are not modified."""
        docs = list(docs)
        if not docs:
            return []
        screens = self._screens(docs)
        sentence_spans = self._sentence_spans(docs, screens)
        return self._decide(docs, sentence_spans, screens, self.detector.predict(_notes(docs, sentence_spans)))

    def _decide(self, docs: Sequence[Doc], sentence_spans: list[list[tuple[int, int]]],
                screens: Sequence[Screen | None],
                predictions: Sequence[NotePrediction]) -> list[tuple[list[tuple[int, int]], Verdict]]:
        """Claims, the sources' judgements and the verdict of each doc."""
        verdicts = []
        all_claims = [self._claims(doc, spans, prediction) if screened is None else []
                      for doc, spans, screened, prediction in zip(docs, sentence_spans, screens, predictions)]
        self._add_alternatives(docs, sentence_spans, all_claims)
        verified = self._verify(docs, sentence_spans, all_claims)
        for index, (doc, spans, screened, claims, prediction) in enumerate(
                zip(docs, sentence_spans, screens, all_claims, predictions)):
            if screened is not None:
                verdicts.append(Verdict.not_analysed(screened.status, screened.reason))
                continue
            judgements = self._judgements(prediction, claims) + self._checked(doc, spans)
            if index in verified:
                judgements.append(verified[index])
            verdicts.append(self._verdict(claims, judgements))
        return list(zip(sentence_spans, verdicts))

    def _checked(self, doc: Doc, spans: list[tuple[int, int]]) -> list[Judgement]:
        """One judgement per fired evidence check (none when checks are off)."""
        if self.checks is None or not spans:
            return []
        return [_check_judgement(doc.text, result) for result in self.checks(doc, spans)]

    def _verify(self, docs: Sequence[Doc], sentence_spans: list[list[tuple[int, int]]],
                all_claims: list[list[Finding]]) -> dict[int, Judgement]:
        """The verifier's judgement of every doc with claims (one request per note, all of the batch at
        once), by doc index; a doc without claims costs no call."""
        if self.verifier is None:
            return {}
        indices = [i for i, claims in enumerate(all_claims) if claims]
        requests = [VerificationRequest(docs[i].text, tuple(sentence_spans[i]),
                                        tuple(all_claims[i][: self.cfg["verify_top_k"]])) for i in indices]
        return dict(zip(indices, self.verifier(requests))) if requests else {}

    def set_annotations(self, docs: Sequence[Doc], predictions: Sequence[tuple[list[tuple[int, int]], Verdict]]) -> None:
        """Write sentence boundaries (when the doc had none), error and claim spans, and the verdict."""
        for doc, (spans, verdict) in zip(docs, predictions):
            if not doc.has_annotation("SENT_START") and len(doc) and spans:
                _set_sentence_starts(doc, spans)
            doc.spans[self.claims_key] = _span_list(doc, verdict.claims)
            doc.spans[self.cfg["spans_key"]] = _span_list(doc, verdict.findings)
            span_group = doc.spans[self.cfg["spans_key"]]
            span_group.attrs[VERDICT_ATTR] = verdict.to_dict()
            span_group.attrs["medcorr.model_version"] = self.model_version

    # ----------------------------------------------------------------- internals
    def _screens(self, docs: Sequence[Doc]) -> list[Screen | None]:
        return [screen(doc.text, self.cfg["max_note_chars"], self.cfg["check_language"]) for doc in docs]

    def _sentence_spans(self, docs: Sequence[Doc], screens: Sequence[Screen | None]) -> list[list[tuple[int, int]]]:
        analysed = [doc for doc, screened in zip(docs, screens) if screened is None and len(doc)]
        need_split = [doc for doc in analysed if not doc.has_annotation("SENT_START")]
        guesses = dict(zip(map(id, need_split), self.sentencizer.predict(need_split))) if need_split else {}
        result = []
        for doc, screened in zip(docs, screens):
            if screened is not None or not len(doc):
                result.append([])
            elif id(doc) in guesses:
                result.append(_spans_from_starts(doc, guesses[id(doc)]))
            else:
                result.append([(s.start_char, s.end_char) for s in doc.sents])
        return result

    def _claims(self, doc: Doc, spans: list[tuple[int, int]], prediction: NotePrediction) -> list[Finding]:
        negated = _negated_ranges(doc) if self.cfg["respect_context"] else []
        return rank_claims(doc, spans, prediction, self.matcher, negated, self.cfg["max_claims"])

    def _judgements(self, prediction: NotePrediction, claims: list[Finding]) -> list[Judgement]:
        judgement = self.head.judge(prediction, claims)
        return [] if judgement is None else [judgement]

    @staticmethod
    def _verdict(claims: list[Finding], judgements: list[Judgement]) -> Verdict:
        decision = combine(judgements, bool(claims), UNJUDGED_REASON)
        return Verdict(status=decision.status, flag=decision.flag, score=decision.score,
                       error_sentence=decision.error_sentence, source=decision.source,
                       status_reason=decision.reason, claims=claims, findings=decision.findings)

    def _add_alternatives(self, docs: Sequence[Doc], sentence_spans: list[list[tuple[int, int]]],
                          all_claims: list[list[Finding]]) -> None:
        """Lexicon alternatives for each claim, for reviewers: unranked (alphabetical), never a correction."""
        if self.generator is None:
            return
        requests = [CorrectionRequest(doc.text, tuple(spans), claim)
                    for doc, spans, claims in zip(docs, sentence_spans, all_claims) for claim in claims
                    if claim.basis is not SpanBasis.SENTENCE]
        if not requests:
            return
        for request, proposal in zip(requests, self.generator(requests)):
            names = {text.strip() for text, _ in proposal.candidates if text.strip()}
            names.discard(request.finding.text.strip())
            request.finding.alternatives = sorted(names, key=str.lower)

    # ----------------------------------------------------------------- serialization
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write ``cfg.json`` and a copy of the model directory (ONNX, tokenizer, metadata)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "cfg.json").write_text(json.dumps(self.cfg, indent=2), encoding="utf-8")
        model_dir = path / "model"
        model_dir.mkdir(exist_ok=True)
        for name in (*self.detector.model_files, TOKENIZER_FILE, META_FILE, SUBSTITUTIONS_FILE, EMBED_FILE):
            source = self.detector.model_dir / name
            if source.is_file() and source.resolve() != (model_dir / name).resolve():
                shutil.copy(source, model_dir / name)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> "MedcorrComponent":
        """Load what :meth:`to_disk` wrote."""
        path = Path(path)
        # the settings come from the pipeline's config (with any overrides given to spacy.load); cfg.json
        # only fills settings that config lacks
        for key, value in json.loads((path / "cfg.json").read_text(encoding="utf-8")).items():
            self.cfg.setdefault(key, value)
        self._sentencizer = None
        self.detector = self._build_detector(path / "model")
        self.head = DetectorHead(self.detector.meta, self.cfg["threshold"])
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
    return [(start, end) for _, start, end in context_scopes(doc, {"NEGATED_EXISTENCE"})]


def _check_judgement(text: str, result: CheckResult) -> Judgement:
    """A fired check as an asserted error: the check is its source, its cited spans the evidence."""
    name = f"check.{result.kind}"
    evidence = Evidence(SourceKind.CHECK, name, reason=result.reason, confidence=1.0,
                        measured=CHECKS_MEASURED.get(result.kind, ""), spans=list(result.evidence_spans))
    finding = Finding(result.start, result.end, text[result.start:result.end], result.error_type, 1.0,
                      result.sentence, role=Role.ERROR, correction=result.correction,
                      corrected_sentence=result.corrected_sentence,
                      correction_source=name if (result.correction or result.corrected_sentence) else None,
                      evidence=[evidence])
    return Judgement(evidence, error=True, score=1.0, findings=[finding])


def _span_list(doc: Doc, findings: Sequence[Finding]) -> list[Span]:
    spans = [doc.char_span(f.start, f.end, label=f.type.value, alignment_mode="expand") for f in findings]
    return [span for span in spans if span is not None]
