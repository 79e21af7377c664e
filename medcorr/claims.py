"""Claims: the check-worthy statements of a note, ranked by the localiser.

The detector's localisation head gives a distribution over the note's sentences (where the note states its
checkable claim). :func:`rank_claims` turns the best sentences into :class:`~medcorr.finding.Finding`\\ s of
role ``claim``: in each, the lexicon term (diagnosis, drug, organism, procedure) the token head scores
highest, or the best-scored run of tokens when the sentence names no lexicon term. A claim is a place to
double-check, never an asserted error.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
from spacy.tokens import Doc

from medcorr.detector import NotePrediction
from medcorr.finding import ErrorType, Finding, Role, SpanBasis

#: The error type a lexicon kind states; a procedure is a management step or a treatment (the type head
#: chooses between the two).
TYPES_OF_KIND: dict[str, tuple[ErrorType, ...]] = {
    "drug": (ErrorType.PHARMACOTHERAPY,),
    "organism": (ErrorType.CAUSAL_ORGANISM,),
    "diagnosis": (ErrorType.DIAGNOSIS,),
    "procedure": (ErrorType.MANAGEMENT, ErrorType.TREATMENT),
}

#: How many claims a note reports by default: on the MEDEC-MS validation notes (5-fold grouped CV) the
#: error sentence is among the top 3 sentences of the localiser in nearly every error note.
DEFAULT_MAX_CLAIMS = 3


def rank_claims(doc: Doc, sentence_spans: Sequence[tuple[int, int]], prediction: NotePrediction,
                matcher: Callable, negated: Sequence[tuple[int, int]] = (),
                max_claims: int = DEFAULT_MAX_CLAIMS) -> list[Finding]:
    """The note's best ``max_claims`` claims, best first.

    Sentences are taken in the localiser's order; a sentence whose only lexicon terms lie inside a negation
    scope (``negated``: character ranges, from medspaCy ConText) states no claim and is skipped.
    """
    if not sentence_spans or prediction.location.size == 0:
        return []
    order = np.argsort(-prediction.location, kind="stable")
    claims: list[Finding] = []
    for sentence in order.tolist():
        if len(claims) >= max_claims:
            break
        claim = _claim_in_sentence(doc, sentence_spans, prediction, int(sentence), matcher, negated)
        if claim is not None:
            claim.rank = len(claims)
            claims.append(claim)
    return claims


def _claim_in_sentence(doc: Doc, sentence_spans: Sequence[tuple[int, int]], prediction: NotePrediction,
                       sentence: int, matcher: Callable, negated: Sequence[tuple[int, int]]) -> Finding | None:
    start, end = sentence_spans[sentence]
    offsets, probs = prediction.span_arrays((start, end))
    sentence_span = doc.char_span(start, end, alignment_mode="expand")
    candidates = [c for c in matcher(sentence_span if sentence_span is not None else doc)
                  if c.start_char >= start and c.end_char <= end]
    if negated:
        kept = [c for c in candidates if not _inside_any(c.start_char, c.end_char, negated)]
        if candidates and not kept:
            return None
        candidates = kept
    allowed: tuple[ErrorType, ...] = ()
    if candidates:
        best = max(candidates, key=lambda c: (_mean_score(offsets, probs, c.start_char, c.end_char), -c.start_char))
        span_start, span_end, basis = best.start_char, best.end_char, SpanBasis.TERM
        allowed = TYPES_OF_KIND.get(best.kind, ())
    else:
        span_start, span_end = _span_from_tokens(offsets, probs, start, end)
        basis = SpanBasis.TOKENS
        if len(_WORD.findall(doc.text[span_start:span_end])) == 0:  # a lone "-" or digit: the sentence instead
            span_start, span_end = start, end
        if _covers_sentence(doc.text, span_start, span_end, start, end):
            span_start, span_end, basis = *_trimmed(doc.text, start, end), SpanBasis.SENTENCE
    char_span = doc.char_span(span_start, span_end, alignment_mode="expand")
    if char_span is not None:
        span_start, span_end = char_span.start_char, char_span.end_char
    return Finding(start=span_start, end=span_end, text=doc.text[span_start:span_end],
                   type=prediction.error_type(sentence, allowed), score=float(prediction.location[sentence]),
                   sentence=sentence, role=Role.CLAIM, basis=basis)


#: A word of at least three letters: a token-head span without one is no claim text.
_WORD = re.compile(r"[^\W\d_]{3,}")


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` without surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _covers_sentence(text: str, span_start: int, span_end: int, start: int, end: int) -> bool:
    """True when ``[span_start, span_end)`` holds every letter and digit of the sentence ``[start, end)``."""
    left_out = text[start:span_start] + text[span_end:end]
    return not any(character.isalnum() for character in left_out)


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
