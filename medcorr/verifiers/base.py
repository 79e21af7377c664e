"""What a verifier receives and returns.

A verifier judges a note's localised claims: it receives a :class:`VerificationRequest` (the note as its
sentences and the best ``k`` claims) and returns a :class:`~medcorr.evidence.Judgement` per request:
an asserted error (on one of the claims' sentences, with the corrected sentence and the verifier as
source), no error, or a failure (``error = None``, the reason in the evidence; never a silent "no error").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

from medcorr.evidence import Judgement
from medcorr.finding import Finding


@dataclass(frozen=True)
class VerificationRequest:
    """One note to verify: its text, its sentence spans (the Doc's sentences, in order) and its claims."""

    note: str
    sentences: tuple[tuple[int, int], ...]
    claims: tuple[Finding, ...]

    def sentence_text(self, index: int) -> str:
        """The text of sentence ``index``, whitespace folded."""
        start, end = self.sentences[index]
        return " ".join(self.note[start:end].split())

    @property
    def claim_sentences(self) -> tuple[int, ...]:
        """The sentence indices a verifier may name as the error (those holding a claim)."""
        return tuple(sorted({claim.sentence for claim in self.claims}))


@runtime_checkable
class Verifier(Protocol):
    """A verifier backend: one judgement per request, in order; it must never raise on a bad reply."""

    name: str

    def __call__(self, requests: Sequence[VerificationRequest]) -> list[Judgement]:
        ...

    def stats(self) -> dict[str, int]:
        """Counters since creation: ``calls``, ``prompt_tokens``, ``completion_tokens``, ``cache_hits``,
        ``failures``."""
        ...


def notes_in_flight(verifier: Any) -> int:
    """How many notes ``verifier`` can have questions about in flight at once (its ``notes_in_flight``
    attribute; 1 when it does not say). A batch of fewer notes leaves requests it could send unsent."""
    value = getattr(verifier, "notes_in_flight", None)
    return 1 if value is None else max(1, int(value))


def worst_case_seconds(verifier: Any, notes: int) -> float | None:
    """The longest one call of ``verifier`` on ``notes`` notes can take, or None when unknown.

    A verifier that can bound its calls (it waits on an endpoint with timeouts and retries) says so with a
    ``worst_case_seconds(notes)`` method, which this reads; the method is optional in :class:`Verifier`.
    """
    if notes <= 0:
        return 0.0
    own = getattr(verifier, "worst_case_seconds", None)
    if not callable(own):
        return None
    value = own(notes)
    return None if value is None else float(value)
