"""The generator interface: what a provider of lexicon alternatives receives and returns.

A generator proposes terms of the same family as a claim's span (shown to reviewers, unranked); the
component never turns them into a correction (see :mod:`medcorr.evidence`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from medcorr.finding import Finding


@dataclass(frozen=True)
class CorrectionRequest:
    """One claim to propose alternatives for, with the note it came from.

    ``sentences`` are the note's sentence character spans, in order; ``finding.sentence`` indexes them.
    """

    note: str
    sentences: tuple[tuple[int, int], ...]
    finding: Finding

    @property
    def sentence_text(self) -> str:
        """The text of the sentence that holds the finding."""
        start, end = self.sentences[self.finding.sentence]
        return self.note[start:end]


@dataclass
class Proposal:
    """A generator's answer for one request: ``(replacement span text, prior)`` pairs, in the generator's
    own order (the component shows the texts alphabetically)."""

    candidates: list[tuple[str, float]] = field(default_factory=list)


@runtime_checkable
class Generator(Protocol):
    """A provider of alternatives. Must be deterministic for the same inputs and never raise."""

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
