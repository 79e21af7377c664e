"""Consistency checks inside one note: left against right for one body part, and a finding stated both
present and denied.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from medcorr.checks.knowledge import Mention
from medcorr.checks.note import NoteView
from medcorr.checks.result import CheckResult
from medcorr.finding import ErrorType

__all__ = ["laterality_conflicts", "presence_conflicts"]

#: words allowed between a side word and its body part ("left lower quadrant", "right proximal femur")
_MAX_GAP = 2
_SIDE_FLIP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT",
              "L": "R", "R": "L", "lt": "rt", "rt": "lt", "Lt": "Rt", "Rt": "Lt"}
_ABBR_FLIP = {"RLQ": "LLQ", "LLQ": "RLQ", "RUQ": "LUQ", "LUQ": "RUQ", "RLL": "LLL", "LLL": "RLL", "RUL": "LUL",
              "LUL": "RUL", "OD": "OS", "OS": "OD"}
#: a denial that names a change over time ("no longer", "resolved", "since") does not contradict an earlier
#: statement of the finding
_CHANGED = re.compile(r"\b(resolved|resolution|no longer|anymore|any more|now|currently|since|after|following|"
                      r"today|tonight|this morning|subsequently|later|at discharge|on discharge|follow up|"
                      r"improved|disappeared|stopped)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Sided:
    side: str
    part: str
    start: int          # span of side word .. body part
    end: int
    side_start: int     # span of the side word itself
    side_end: int
    sentence: int


def _sided_mentions(view: NoteView) -> list[_Sided]:
    k = view.knowledge
    side_words = {w: side for side, words in k.laterality.get("side_words", {}).items() for w in words}
    out = []
    for body in view.of("body"):
        for gap in range(0, _MAX_GAP + 1):
            i = body.first_word - 1 - gap
            if i < 0:
                break
            word = view.words[i]
            side = side_words.get(word)
            if side is None:
                continue
            raw = view.text[view.word_starts[i]:view.word_ends[i]]
            if len(word) == 1 and not raw.isupper():
                break
            between = view.text[view.word_ends[i]:body.start]
            if re.search(r"[.,;:()]", between):
                break
            out.append(_Sided(side, body.value, view.word_starts[i], body.end, view.word_starts[i], view.word_ends[i],
                              view.sentence_of(body.start)))
            break
    abbreviations = k.laterality.get("abbreviations", {})
    for match in re.finditer(r"\b(" + "|".join(map(re.escape, abbreviations)) + r")\b", view.text) if abbreviations else ():
        side, part = abbreviations[match.group(1)]
        out.append(_Sided(side, part, match.start(), match.end(), match.start(), match.end(),
                          view.sentence_of(match.start())))
    return out


def _blocks(view: NoteView, mention: _Sided) -> bool:
    """True when the mention's sentence compares sides ("bilateral", "larger than", "radiating to"), or its
    clause calls the side normal or dates it ("normal", "intact", "previous"), or the side is negated."""
    patterns = view.knowledge.patterns
    first, last = view.sentence_words(mention.sentence)
    if patterns["laterality_sentence"].search(view.joined(first, last)):
        return True
    side_word = bisect.bisect_left(view.word_starts, mention.side_start)
    end_word = bisect.bisect_left(view.word_starts, mention.end) - 1
    probe = Mention("side", None, mention.start, mention.end, side_word, max(side_word, end_word))
    c_first, c_last = view.clause_bounds(probe)
    if patterns["laterality_local"].search(view.joined(c_first, c_last)):
        return True
    scope = view.scope(probe)
    return scope.negated or scope.hypothetical or scope.family


def laterality_conflicts(view: NoteView) -> list[CheckResult]:
    """One body part stated left in one place and right in another, both as positive statements."""
    skip = set(view.knowledge.laterality.get("skip_parts", ()))
    sided = [m for m in _sided_mentions(view) if m.part not in skip]
    both_in_one = {(m.sentence, m.part) for m in sided
                   if any(o.part == m.part and o.sentence == m.sentence and o.side != m.side for o in sided)}
    mentions = [m for m in sided if (m.sentence, m.part) not in both_in_one and not _blocks(view, m)]
    by_part: dict[str, list[_Sided]] = {}
    for m in mentions:
        by_part.setdefault(m.part, []).append(m)
    results = []
    for part, items in sorted(by_part.items()):
        sides = {m.side for m in items}
        if len(sides) < 2:
            continue
        counts = {side: sum(1 for m in items if m.side == side) for side in sides}
        minority = min(sides, key=lambda s: (counts[s], -max(m.start for m in items if m.side == s)))
        majority = "left" if minority == "right" else "right"
        asserted = [m for m in items if m.side == minority][-1]
        others = [m for m in items if m.side == majority]
        correction = corrected = None
        if counts[majority] > counts[minority]:
            raw = view.text[asserted.side_start:asserted.side_end]
            flipped = _ABBR_FLIP.get(raw) or _SIDE_FLIP.get(raw) or _SIDE_FLIP.get(raw.lower())
            if flipped:
                correction = flipped + view.text[asserted.side_end:asserted.end]
                s_start, s_end = view.sentences[asserted.sentence]
                corrected = (view.text[s_start:asserted.side_start] + flipped + view.text[asserted.side_end:s_end])
        written = view.text[asserted.start:asserted.end]
        other_sentences = sorted({m.sentence for m in others})
        results.append(CheckResult(
            kind="laterality_conflict", error_type=ErrorType.DIAGNOSIS, start=asserted.start, end=asserted.end,
            sentence=asserted.sentence,
            evidence_spans=[(asserted.start, asserted.end)] + [(m.start, m.end) for m in others],
            reason=(f"{written} ({minority}) conflicts with the {majority} side stated for the same body part "
                    f"(sentence {', '.join(map(str, other_sentences))})"),
            correction=correction, corrected_sentence=corrected))
    return results


def presence_conflicts(view: NoteView) -> list[CheckResult]:
    """A finding denied in one sentence and stated present in another: the denial names no change over time,
    the affirmation is not hypothetical, historical or about another person."""
    findings = view.of("finding")
    if len(findings) < 2:
        return []
    denied: dict[str, list[Mention]] = {}
    present: dict[str, list[Mention]] = {}
    for mention in findings:
        scope = view.scope(mention)
        if scope.family or scope.hypothetical:
            continue
        if scope.negated:
            denied.setdefault(mention.value, []).append(mention)
        elif not scope.historical:
            present.setdefault(mention.value, []).append(mention)
    results = []
    for name in sorted(set(denied) & set(present)):
        pairs = [(d, p) for d in denied[name] for p in present[name]
                 if view.sentence_of(d.start) != view.sentence_of(p.start)
                 and not _CHANGED.search(view.sentence_text(view.sentence_of(d.start)))]
        if not pairs:
            continue
        d, p = pairs[0]
        written = view.text[d.start:d.end]
        results.append(CheckResult(
            kind="presence_conflict", error_type=ErrorType.DIAGNOSIS, start=d.start, end=d.end,
            sentence=view.sentence_of(d.start), evidence_spans=[(d.start, d.end), (p.start, p.end)],
            reason=(f"{written} is denied here but stated present in sentence {view.sentence_of(p.start)}")))
    return results
