"""One note as the checks see it: words, sentences, term mentions, and the scope of each mention.

A mention's scope says whether the note asserts it about the patient: ``negated`` ("no fever", "pregnancy
test negative"), ``hypothetical`` ("if pregnant", "to rule out"), ``family`` (a relative or another person
is named in the sentence), ``historical`` ("history of", "previous"), ``stopped`` (a drug discontinued,
switched from, held). The rules are trigger phrases (``scope.json``) read in a window of words before
the mention (and a few after, for "negative" / "ruled out" / "discontinued"), cut at clause terminators
("but", "however", ";" ...). When medspaCy's ConText ran on the Doc, its modifier scopes are added on top
(a mention inside a NEGATED_EXISTENCE or FAMILY scope gets that flag): the
rules alone must already hold the line, since many pipelines run without ConText.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

from spacy.tokens import Doc

from medcorr.checks.knowledge import WORD, Knowledge, Mention
from medcorr.context import context_scopes

__all__ = ["NoteView", "Scope"]

_CLAUSE_PUNCT = re.compile(r"[;:!?()\[\]]|\.\s")
_CLAUSE_PUNCT_AFTER = re.compile(r"[;!?()\[\]]|\.\s")  # "Fever: denied." keeps its colon
#: "a 4-day history of fever" is the current illness, not past history
_DURATION_HISTORY = re.compile(r"\b(?:minute|hour|day|week|month|year|yr)s? (?:long )?history of\b")
#: "as a child" dates an event of the patient; it names no other person
_OWN_CHILDHOOD = re.compile(r"\b(?:as a (?:child|baby|boy|girl|teenager|toddler)|as an (?:infant|adolescent)|in (?:early )?childhood)\b")
_HISTORICAL_AFTER = re.compile(r"\b(?:ago|previously|in the past|as a child|in childhood)\b")
#: ConText categories read: NEGATED_EXISTENCE and FAMILY. HISTORICAL, HYPOTHETICAL and POSSIBLE_EXISTENCE are
#: not: with medspaCy's default rules they mark current statements ("a 3-day history of fever", "comes to the
#: physician because of", "at 20 weeks' gestation"); reading all five cut recall on injected conflicts from
#: 0.875 to 0.548 (presence) and 0.818 to 0.586 (pregnancy), these two from 0.854 / 0.717
#: (tests/inject_conflicts.py --context). The rules here handle hypothetical and historical mentions.
_CONTEXT_CATEGORIES = {"NEGATED_EXISTENCE": "negated", "FAMILY": "family"}
POST_WINDOW = 5


@dataclass(frozen=True)
class Scope:
    """How a mention is asserted; all False means: affirmed, about the patient, current."""

    negated: bool = False
    hypothetical: bool = False
    family: bool = False
    historical: bool = False
    stopped: bool = False

    @property
    def affirmed(self) -> bool:
        """Stated as present for the patient (history allowed)."""
        return not (self.negated or self.hypothetical or self.family)


class NoteView:
    """Shared per-note analysis for all checks (computed lazily, never written to the Doc)."""

    def __init__(self, doc: Doc, sentence_spans: Sequence[tuple[int, int]], knowledge: Knowledge) -> None:
        self.doc = doc
        self.text: str = doc.text
        self.knowledge = knowledge
        self.sentences: list[tuple[int, int]] = [(int(s), int(e)) for s, e in sentence_spans] or [(0, len(self.text))]
        self._sentence_starts = [s for s, _ in self.sentences]
        matches = list(WORD.finditer(self.text))
        self.words: list[str] = [m.group().lower() for m in matches]
        self.word_starts: list[int] = [m.start() for m in matches]
        self.word_ends: list[int] = [m.end() for m in matches]
        self._scope_cache: dict[tuple[int, int, str], Scope] = {}

    # ------------------------------------------------------------------------------------------- basics
    @cached_property
    def mentions(self) -> list[Mention]:
        """All term mentions of the note (every label), in text order."""
        return self.knowledge.index.find(self.words, self.word_starts, self.word_ends)

    def of(self, label: str) -> list[Mention]:
        """Mentions with one label."""
        return [m for m in self.mentions if m.label == label]

    def sentence_of(self, char: int) -> int:
        """Index of the sentence holding character ``char`` (the nearest before it when between sentences)."""
        return max(0, bisect.bisect_right(self._sentence_starts, char) - 1)

    def sentence_text(self, index: int) -> str:
        start, end = self.sentences[index]
        return self.text[start:end]

    def sentence_words(self, index: int) -> tuple[int, int]:
        """Word index range [first, last) of a sentence."""
        start, end = self.sentences[index]
        return bisect.bisect_left(self.word_starts, start), bisect.bisect_left(self.word_starts, end)

    def joined(self, first: int, last: int) -> str:
        """Words ``[first, last)`` joined by single spaces (what the cue regexes search)."""
        return " ".join(self.words[max(first, 0):max(last, 0)])

    def find_phrases(self, pattern: "re.Pattern[str]", first: int, last: int) -> list[tuple[int, int]]:
        """Word ranges ``(first word, last word)`` (inclusive) where ``pattern`` matches words ``[first, last)``."""
        text = self.joined(first, last)
        if not text:
            return []
        offsets, pos = [], 0
        for i in range(first, last):
            offsets.append(pos)
            pos += len(self.words[i]) + 1
        out = []
        for match in pattern.finditer(text):
            a = bisect.bisect_right(offsets, match.start()) - 1
            b = bisect.bisect_right(offsets, max(match.end() - 1, match.start())) - 1
            out.append((first + a, first + b))
        return out

    @cached_property
    def lowered(self) -> str:
        return " ".join(self.words)

    # -------------------------------------------------------------------------------------------- scope
    def clause_bounds(self, mention: Mention) -> tuple[int, int]:
        """Word range of the clause around a mention: its sentence, cut at ';', ':' and parentheses."""
        sentence = self.sentence_of(mention.start)
        s_start, s_end = self.sentences[sentence]
        left = self.text[s_start:mention.start]
        cut = [m.end() for m in _CLAUSE_PUNCT.finditer(left)]
        c_start = s_start + (cut[-1] if cut else 0)
        right = self.text[mention.end:s_end]
        nxt = _CLAUSE_PUNCT_AFTER.search(right)
        c_end = mention.end + nxt.start() if nxt else s_end
        return bisect.bisect_left(self.word_starts, c_start), bisect.bisect_left(self.word_starts, c_end)

    def scope(self, mention: Mention, window: int | None = None) -> Scope:
        """The scope flags of ``mention`` (rules, plus ConText when it ran)."""
        key = (mention.start, mention.end, mention.label)
        cached = self._scope_cache.get(key)
        if cached is not None:
            return cached
        k = self.knowledge
        window = window or int(k.scope.get("window", 8))
        c_first, c_last = self.clause_bounds(mention)
        before_first = max(c_first, mention.first_word - window)
        before = self.joined(before_first, mention.first_word)
        terms = list(k.patterns["terminators"].finditer(before))
        if terms:  # the scope of a trigger stops at "but", "however" ...
            before = before[terms[-1].end():]
        after_last = min(c_last, mention.last_word + 1 + POST_WINDOW)
        after = self.joined(mention.last_word + 1, after_last)
        term_after = k.patterns["terminators"].search(after)
        if term_after:
            after = after[:term_after.start()]
        sentence = self.sentence_of(mention.start)
        s_first, s_last = self.sentence_words(sentence)
        whole = self.joined(s_first, s_last)
        flags = {
            "negated": bool(k.patterns["negation_pre"].search(before) or k.patterns["negation_post"].search(after)),
            "hypothetical": bool(k.patterns["hypothetical"].search(before)),
            "family": bool(k.patterns["family"].search(_OWN_CHILDHOOD.sub(" ", whole))),
            "historical": bool(k.patterns["historical"].search(_DURATION_HISTORY.sub(" ", before))
                               or _HISTORICAL_AFTER.search(after)),
            "stopped": bool(k.patterns["stopped"].search(before) or k.patterns["stopped"].search(after)),
        }
        for category, start, end in self.context_ranges:
            if start <= mention.start and mention.end <= end:
                flags[category] = True
        result = Scope(**flags)
        self._scope_cache[key] = result
        return result

    @cached_property
    def context_ranges(self) -> list[tuple[str, int, int]]:
        """(flag, start, end) character ranges of medspaCy ConText modifier scopes (empty without ConText)."""
        return [(_CONTEXT_CATEGORIES[category], start, end)
                for category, start, end in context_scopes(self.doc, _CONTEXT_CATEGORIES)]

    # ------------------------------------------------------------------------------------------ patient
    @cached_property
    def age_years(self) -> float | None:
        """The patient's age from the opening demographics ("A 34-year-old ...", "3-day-old"), if stated."""
        match = _AGE.search(self.text[:400])
        if not match:
            return None
        value = float(match.group(1))
        return value / {"year": 1, "yr": 1, "month": 12, "week": 52, "day": 365}[match.group(2).lower()]

    @cached_property
    def is_child(self) -> bool:
        """True for a newborn / infant / child under 12 (obstetric words then describe the mother)."""
        age = self.age_years
        if age is not None:
            return age < 12
        return bool(_CHILD.search(self.text[:400]))


_AGE = re.compile(r"\b(\d+(?:\.\d+)?)[- ]?(year|yr|month|week|day)s?[- ]old\b", re.IGNORECASE)
_CHILD = re.compile(r"\b(newborn|neonate|infant|toddler|baby|child|boy|girl)\b", re.IGNORECASE)
