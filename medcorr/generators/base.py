"""The generator interface: what a correction backend receives and returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from medcorr.finding import Finding


@dataclass(frozen=True)
class CorrectionRequest:
    """One finding to correct, with the note it came from.

    ``sentences`` are the note's sentence character spans, in order; ``finding.sentence`` indexes them.
    ``note_score`` is the detector's note-level probability, for cascades that only escalate likely errors.
    """

    note: str
    sentences: tuple[tuple[int, int], ...]
    finding: Finding
    note_score: float = 0.0

    @property
    def sentence_text(self) -> str:
        """The text of the sentence that holds the finding."""
        start, end = self.sentences[self.finding.sentence]
        return self.note[start:end]


@dataclass
class Proposal:
    """A generator's answer for one request.

    ``candidates`` are ranked ``(replacement span text, score)`` pairs, best first. ``veto`` means the
    backend judged the finding not to be an error (a cascade verifier may drop it). ``replacement`` is the
    full corrected sentence when the backend rewrote the sentence rather than the span (LLM backends);
    otherwise the component substitutes the best candidate into the sentence.
    """

    candidates: list[tuple[str, float]] = field(default_factory=list)
    veto: bool = False
    corrected_sentence: str | None = None


@runtime_checkable
class Generator(Protocol):
    """A correction backend. Must be deterministic for the same inputs and never raise on a bad reply."""

    def __call__(self, requests: Sequence[CorrectionRequest]) -> list[Proposal]:
        ...


def substitute(sentence: str, span_start: int, span_end: int, replacement: str) -> str:
    """Replace ``sentence[span_start:span_end]`` by ``replacement`` (offsets relative to the sentence)."""
    return sentence[:span_start] + replacement + sentence[span_end:]


def substitute_in_note(note: str, sentences: Sequence[tuple[int, int]], start: int, end: int,
                       replacement: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Replace ``note[start:end]`` and shift the sentence spans: the sentence holding the span grows or
    shrinks, the ones after it move."""
    shift = len(replacement) - (end - start)
    spans = tuple((s, e) if e <= start else (s if s <= start else s + shift, e + shift) for s, e in sentences)
    return note[:start] + replacement + note[end:], spans
