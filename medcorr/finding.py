"""The one data model for a finding, shared by the spaCy component, the CLI, the MEDEC runner, FHIR and Spark.

medcorr keeps two things apart that a reader must never confuse:

- a **claim** (:attr:`Role.CLAIM`): a check-worthy statement (a diagnosis, a drug, a management step ...)
  that the localiser ranked among the note's most likely places for an error. It says "re-read this", not
  "this is wrong";
- an **error** (:attr:`Role.ERROR`): a statement that a source with measured discrimination (a verifier
  backend, an evidence check, or a detector whose cross-validated verdict AUC clears the floor) judged
  wrong. It carries that source as :class:`Evidence`, and a correction only when that source produced one.

A :class:`Verdict` holds both lists, the note's :class:`Status`, and ``flag``: True (an error was
asserted), False (a judging source found no error), or None (nothing judged the note: medcorr cannot
tell). Everything serialises to plain JSON with ``to_dict`` and back with ``from_dict``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ErrorType(str, Enum):
    """The five MEDEC error types, as span labels."""

    DIAGNOSIS = "DIAGNOSIS"
    MANAGEMENT = "MANAGEMENT"
    TREATMENT = "TREATMENT"
    PHARMACOTHERAPY = "PHARMACOTHERAPY"
    CAUSAL_ORGANISM = "CAUSAL_ORGANISM"

    @classmethod
    def from_medec(cls, name: str) -> "ErrorType":
        """Map a MEDEC ``Error Type`` value (``causalOrganism``, ``diagnosis`` ...) to a label."""
        key = name.strip()
        if key == "causalOrganism":
            return cls.CAUSAL_ORGANISM
        return cls[key.upper()]

    @property
    def medec_name(self) -> str:
        """The MEDEC spelling of this type (``causalOrganism``, ``diagnosis`` ...)."""
        return "causalOrganism" if self is ErrorType.CAUSAL_ORGANISM else self.value.lower()


ERROR_TYPES: tuple[ErrorType, ...] = tuple(ErrorType)


class Role(str, Enum):
    """What a :class:`Finding` is: a claim to double-check, or an asserted error."""

    CLAIM = "claim"
    ERROR = "error"


class SpanBasis(str, Enum):
    """How a claim's span was chosen inside its sentence.

    ``term``: a lexicon term (diagnosis, drug, organism, procedure) the localiser's token head scored
    highest; ``tokens``: the best-scored run of tokens (the sentence names no lexicon term); ``sentence``:
    the whole sentence (no term and no usable token run: re-read the sentence).
    """

    TERM = "term"
    TOKENS = "tokens"
    SENTENCE = "sentence"


class Status(str, Enum):
    """What medcorr could do with a note.

    ``checked``: a judging source (verifier, check, trusted detector) decided ``flag``.
    ``claims_only``: claims were localised but no configured source can judge them (``flag`` is None).
    ``unverified``: a judging source was configured but failed on this note (``flag`` is None; the reason
    says why; re-check later). ``no_claims``: the note states nothing medcorr can check.
    ``empty``, ``not_english``, ``too_long``: the note was not analysed (no claims, no score).
    """

    CHECKED = "checked"
    CLAIMS_ONLY = "claims_only"
    UNVERIFIED = "unverified"
    NO_CLAIMS = "no_claims"
    EMPTY = "empty"
    NOT_ENGLISH = "not_english"
    TOO_LONG = "too_long"

    @property
    def analysed(self) -> bool:
        """True when the note went through the localiser (it may have claims)."""
        return self in (Status.CHECKED, Status.CLAIMS_ONLY, Status.UNVERIFIED, Status.NO_CLAIMS)


class SourceKind(str, Enum):
    """The kinds of source that may assert an error."""

    VERIFIER = "verifier"
    CHECK = "check"
    DETECTOR = "detector"


@dataclass
class Evidence:
    """Who judged a note (or asserted a finding), and on what grounds.

    ``kind`` is the kind of source; ``name`` identifies it (``medcorr.ChatVerifier.v1 model@host``,
    ``check.allergy_conflict``, ``medcorr.OnnxDetector.v1 model 0.1.0``); ``reason`` is a plain-language
    rationale; ``confidence`` (0..1 or None) how sure the source is (a vote share, a probability);
    ``measured`` what is known of the source's discrimination (``cross-validated verdict AUC 0.81``);
    ``spans`` character ranges of the note that the source cites (a check cites both conflicting spans).
    """

    kind: SourceKind
    name: str
    reason: str = ""
    confidence: float | None = None
    measured: str = ""
    spans: list[tuple[int, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "kind": self.kind.value,
            "name": self.name,
            "reason": self.reason,
            "confidence": None if self.confidence is None else round(float(self.confidence), 6),
            "measured": self.measured,
            "spans": [[int(start), int(end)] for start, end in self.spans],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Evidence":
        """Inverse of :meth:`to_dict`."""
        confidence = data.get("confidence")
        return cls(
            kind=SourceKind(data["kind"]),
            name=str(data["name"]),
            reason=str(data.get("reason", "")),
            confidence=None if confidence is None else float(confidence),
            measured=str(data.get("measured", "")),
            spans=[(int(s), int(e)) for s, e in data.get("spans", [])],
        )


@dataclass
class Finding:
    """A span of a note: a claim to double-check (``role = claim``) or an asserted error (``role = error``).

    ``start``/``end`` are character offsets into the note text; ``sentence`` is the index of the sentence
    that holds the span. ``score`` (0..1): for a claim, its share of the localiser's distribution over the
    note's sentences (how likely this sentence holds the note's checkable claim); for an error, the
    confidence of the source that asserted it. ``rank`` orders claims, best first (0-based). ``basis`` says
    how a claim's span was chosen (:class:`SpanBasis`; None for a span a source named itself).
    ``correction`` / ``corrected_sentence`` are set only on errors, only when the asserting source produced
    them, and ``correction_source`` names that source. ``alternatives`` are lexicon terms of the same
    family, shown to a reviewer unranked; they are never a correction. ``evidence`` lists the sources that
    asserted an error (empty for a claim).
    """

    start: int
    end: int
    text: str
    type: ErrorType
    score: float
    sentence: int
    role: Role = Role.CLAIM
    rank: int = 0
    correction: str | None = None
    corrected_sentence: str | None = None
    correction_source: str | None = None
    alternatives: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    basis: SpanBasis | None = None

    @property
    def is_error(self) -> bool:
        """True for an asserted error."""
        return self.role is Role.ERROR

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a claim or finding in ``medcorr check --json``."""
        return {
            "role": self.role.value,
            "rank": self.rank,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "type": self.type.value,
            "score": round(float(self.score), 6),
            "sentence": self.sentence,
            "basis": None if self.basis is None else self.basis.value,
            "correction": self.correction,
            "corrected_sentence": self.corrected_sentence,
            "correction_source": self.correction_source,
            "alternatives": list(self.alternatives),
            "evidence": [item.to_dict() for item in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        """Inverse of :meth:`to_dict`."""
        return cls(
            start=int(data["start"]),
            end=int(data["end"]),
            text=str(data["text"]),
            type=ErrorType(data["type"]),
            score=float(data["score"]),
            sentence=int(data["sentence"]),
            basis=None if data.get("basis") is None else SpanBasis(data["basis"]),
            role=Role(data.get("role", Role.CLAIM.value)),
            rank=int(data.get("rank", 0)),
            correction=data.get("correction"),
            corrected_sentence=data.get("corrected_sentence"),
            correction_source=data.get("correction_source"),
            alternatives=[str(a) for a in data.get("alternatives", [])],
            evidence=[Evidence.from_dict(e) for e in data.get("evidence", [])],
        )


@dataclass
class Verdict:
    """The note-level result.

    ``status`` says what medcorr could do with the note (:class:`Status`) and ``status_reason`` why, in
    one line. ``flag`` is True when an error is asserted, False when a judging source found none, None
    when nothing judged the note. ``source`` is the :class:`Evidence` of the source that decided ``flag``
    (None when nothing did); ``score`` its confidence that the note has an error (None when not judged).
    ``error_sentence`` is the index of the asserted error's sentence, -1 otherwise. ``claims`` are the
    ranked claims to double-check (best first); ``findings`` the asserted errors.
    """

    status: Status
    flag: bool | None = None
    score: float | None = None
    error_sentence: int = -1
    source: Evidence | None = None
    status_reason: str = ""
    claims: list[Finding] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def suspect_sentence(self) -> int:
        """The sentence of the best-ranked claim (-1 without claims)."""
        return self.claims[0].sentence if self.claims else -1

    @property
    def judged(self) -> bool:
        """True when a source decided ``flag`` (error or no error)."""
        return self.flag is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``medcorr check --json``."""
        return {
            "status": self.status.value,
            "status_reason": self.status_reason,
            "flag": self.flag,
            "score": None if self.score is None else round(float(self.score), 6),
            "error_sentence": self.error_sentence,
            "source": None if self.source is None else self.source.to_dict(),
            "claims": [claim.to_dict() for claim in self.claims],
            "findings": [finding.to_dict() for finding in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Verdict":
        """Inverse of :meth:`to_dict`."""
        flag, score, source = data.get("flag"), data.get("score"), data.get("source")
        return cls(
            status=Status(data["status"]),
            flag=None if flag is None else bool(flag),
            score=None if score is None else float(score),
            error_sentence=int(data.get("error_sentence", -1)),
            source=None if source is None else Evidence.from_dict(source),
            status_reason=str(data.get("status_reason", "")),
            claims=[Finding.from_dict(c) for c in data.get("claims", [])],
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
        )

    @classmethod
    def not_analysed(cls, status: Status, reason: str) -> "Verdict":
        """The verdict of a note that was not analysed (empty, not English, too long)."""
        return cls(status=status, status_reason=reason)

    @classmethod
    def empty(cls) -> "Verdict":
        """The verdict for a note with nothing to check (empty or whitespace only)."""
        return cls.not_analysed(Status.EMPTY, "the note is empty or whitespace only")
