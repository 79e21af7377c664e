"""The one data model for a finding, shared by the spaCy component, the CLI, the MEDEC runner and FHIR.

A :class:`Finding` is a suspicious span (character offsets into the note, so it survives outside spaCy);
a :class:`Verdict` is the note-level decision plus the localisation that produced it. Both serialise to
plain JSON with :meth:`to_dict` and back with :meth:`from_dict`.
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


@dataclass
class Finding:
    """A suspicious span in a note, with its score and the proposed correction.

    ``start``/``end`` are character offsets into the note text; ``sentence`` is the index of the sentence
    that holds the span. ``score`` (0..1) is the probability that this span is the note's error.
    ``candidates`` are ranked ``(replacement text, score)`` pairs; ``correction`` is the best replacement
    span text and ``corrected_sentence`` the full sentence with it substituted (None when no proposal).
    """

    start: int
    end: int
    text: str
    type: ErrorType
    score: float
    sentence: int
    correction: str | None = None
    corrected_sentence: str | None = None
    candidates: list[tuple[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``medcorr check --json`` findings."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "type": self.type.value,
            "score": round(float(self.score), 6),
            "sentence": self.sentence,
            "correction": self.correction,
            "corrected_sentence": self.corrected_sentence,
            "candidates": [[text, round(float(score), 6)] for text, score in self.candidates],
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
            correction=data.get("correction"),
            corrected_sentence=data.get("corrected_sentence"),
            candidates=[(str(t), float(s)) for t, s in data.get("candidates", [])],
        )


@dataclass
class Verdict:
    """The note-level decision.

    ``score`` is the probability that the note contains an error; ``flag`` is ``score >= threshold``.
    ``error_sentence`` is the index of the flagged sentence, or -1 when the note is not flagged.
    The localisation is reported separately from the verdict: ``suspect_sentence`` is the sentence the
    detector finds most likely to hold the note's claim-to-check (always set for a non-empty note, even
    when not flagged), with ``suspect_score`` its share of the localisation distribution, so a cascade can
    send exactly that sentence to a stronger verifier.
    """

    flag: bool
    score: float
    error_sentence: int
    suspect_sentence: int = -1
    suspect_score: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``medcorr check --json``."""
        return {
            "flag": self.flag,
            "score": round(float(self.score), 6),
            "error_sentence": self.error_sentence,
            "suspect_sentence": self.suspect_sentence,
            "suspect_score": round(float(self.suspect_score), 6),
            "findings": [finding.to_dict() for finding in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Verdict":
        """Inverse of :meth:`to_dict`."""
        return cls(
            flag=bool(data["flag"]),
            score=float(data["score"]),
            error_sentence=int(data["error_sentence"]),
            suspect_sentence=int(data.get("suspect_sentence", -1)),
            suspect_score=float(data.get("suspect_score", 0.0)),
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
        )

    @classmethod
    def empty(cls) -> "Verdict":
        """The verdict for a note with nothing to check (empty or whitespace only)."""
        return cls(flag=False, score=0.0, error_sentence=-1)
