"""Synthetic error notes: the right answer of a corrected note swapped for a lexicon sibling.

MEDEC errors replace a vignette's correct diagnosis / drug / organism / procedure by a plausible wrong one.
For every training error note with a corrected sentence we know where the correct answer sits in its
corrected twin, so we can make more wrong versions of the same vignette: substitute siblings from the
lexicon (same ICD-10-CM block, drug class or MeSH branch, genus; see :meth:`Lexicon.siblings`). Each
synthetic error note is paired with a copy of its clean twin, so the verdict sees the same note right and
wrong. Only training notes are used; a fold's test notes never feed this.
"""
from __future__ import annotations

import random
from dataclasses import replace
from typing import Sequence

from medcorr.generators.base import substitute_in_note
from medcorr.candidates import KINDS_FOR_TYPE
from medcorr.lexicon import Lexicon
from medcorr.substitutions import normalize
from medcorr.train.data import LabelledNote, corrected_copy, diff_span


def _concept_in(lexicon: Lexicon, text: str, kind: str) -> tuple[int, int, str] | None:
    """The longest ``kind`` term inside ``text`` as ``(start, end, term)`` (character offsets), if any."""
    words = [(m_start, m_start + len(word)) for m_start, word in _word_offsets(text)]
    for size in range(len(words), 0, -1):
        for begin in range(0, len(words) - size + 1):
            start, end = words[begin][0], words[begin + size - 1][1]
            while start < end and text[start] in " .,;:()":
                start += 1
            while end > start and text[end - 1] in " .,;:()":
                end -= 1
            term = text[start:end]
            if term and kind in lexicon.kinds_of(term):
                return start, end, term
    return None


def _word_offsets(text: str) -> list[tuple[int, str]]:
    offsets, position = [], 0
    for word in text.split():
        position = text.index(word, position)
        offsets.append((position, word))
        position += len(word)
    return offsets


def match_case(replacement: str, original: str) -> str:
    """``replacement`` capitalised like ``original``'s first letter (a lower-case sentence start would be a
    give-away that the model could learn instead of the medicine)."""
    if original[:1].isupper() and replacement[:1].islower():
        return replacement[0].upper() + replacement[1:]
    if original[:1].islower() and replacement[:1].isupper() and not replacement[1:2].isupper():
        return replacement[0].lower() + replacement[1:]
    return replacement


def swap_targets(note: LabelledNote, lexicon: Lexicon, limit: int) -> list[tuple[int, int, str]]:
    """Where the right answer sits in ``note``'s corrected twin and its siblings: ``(start, end, sibling)``.

    Offsets are in the corrected twin's text. Empty when the note has no corrected sentence or its
    corrected span holds no lexicon concept of the error type's kinds.
    """
    twin = corrected_copy(note)
    if twin is None or note.error_type is None:
        return []
    start, _ = twin.sentences[twin.claim_sentence]
    wrong = note.text[slice(*note.sentences[note.error_sentence])]
    right_start, right_end = diff_span(note.corrected_sentence or "", wrong)
    right_text = (note.corrected_sentence or "")[right_start:right_end]
    wrong_key = normalize(note.text[slice(*note.error_span)]) if note.error_span else ""
    targets: list[tuple[int, int, str]] = []
    for kind in KINDS_FOR_TYPE[note.error_type]:
        found = _concept_in(lexicon, right_text, kind)
        if found is None:
            continue
        concept_start, concept_end, term = found
        absolute = start + right_start
        for sibling in lexicon.siblings(term, kind, limit=limit):
            if normalize(sibling) != wrong_key:
                targets.append((absolute + concept_start, absolute + concept_end, match_case(sibling, term)))
        if targets:
            break
    return targets


def synthetic_swaps(notes: Sequence[LabelledNote], per_note: int, seed: int, lexicon: Lexicon | None = None,
                    sibling_pool: int = 20) -> list[LabelledNote]:
    """Up to ``per_note`` synthetic (error note, clean twin) pairs per error note with a corrected sentence.

    Siblings are drawn at random (seeded) from the ``sibling_pool`` closest ones, so the wrong answers are
    plausible but varied. The real wrong answer is never reused (the model already sees it).
    """
    if per_note <= 0:
        return []
    lexicon = lexicon or Lexicon.load()
    rng = random.Random(seed)
    out: list[LabelledNote] = []
    for note in notes:
        targets = swap_targets(note, lexicon, sibling_pool)
        if not targets:
            continue
        twin = corrected_copy(note)
        assert twin is not None
        for index, (start, end, sibling) in enumerate(rng.sample(targets, min(per_note, len(targets)))):
            text, sentences = substitute_in_note(twin.text, twin.sentences, start, end, sibling)
            out.append(replace(
                note, note_id=f"{note.note_id}#swap{index}", text=text, sentences=sentences,
                error_sentence=twin.claim_sentence, error_span=(start, start + len(sibling)),
                corrected_sentence=twin.text[slice(*twin.sentences[twin.claim_sentence])]))
            out.append(replace(twin, note_id=f"{note.note_id}#swap{index}-clean"))
    return out
