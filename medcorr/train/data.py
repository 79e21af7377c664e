"""Labelled notes for training: error location, type, erroneous span, and contrastive corrected copies."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from medcorr.encoding import NoteEncoder, Window
from medcorr.finding import ErrorType
from medcorr.generators.base import substitute_in_note


@dataclass(frozen=True)
class LabelledNote:
    """A note with its gold labels.

    ``error_sentence`` is the position (in ``sentences``) of the wrong sentence, -1 for a clean note;
    ``claim_sentence`` is where the note states the checkable claim when known (for clean notes made from
    a corrected error note), else -1. ``error_span`` is the wrong span in note character offsets.
    """

    note_id: str
    text: str
    sentences: tuple[tuple[int, int], ...]
    error_sentence: int = -1
    error_type: ErrorType | None = None
    error_span: tuple[int, int] | None = None
    corrected_sentence: str | None = None
    claim_sentence: int = -1

    @property
    def has_error(self) -> bool:
        return self.error_sentence >= 0

    @property
    def target_sentence(self) -> int:
        """The sentence the localisation head should point at (-1: none known)."""
        return self.error_sentence if self.has_error else self.claim_sentence


def diff_span(wrong: str, right: str) -> tuple[int, int]:
    """The smallest word-aligned character range of ``wrong`` that differs from ``right``."""
    prefix = 0
    while prefix < min(len(wrong), len(right)) and wrong[prefix] == right[prefix]:
        prefix += 1
    suffix = 0
    while (suffix < min(len(wrong), len(right)) - prefix
           and wrong[len(wrong) - 1 - suffix] == right[len(right) - 1 - suffix]):
        suffix += 1
    start, end = prefix, len(wrong) - suffix
    while start > 0 and wrong[start - 1].isalnum():
        start -= 1
    while end < len(wrong) and wrong[end].isalnum():
        end += 1
    if end <= start:  # identical or pure deletion: mark the whole sentence
        return 0, len(wrong)
    return start, end


def corrected_copy(note: LabelledNote) -> LabelledNote | None:
    """The clean twin of an error note: the corrected sentence substituted, claim location kept."""
    if not note.has_error or not note.corrected_sentence:
        return None
    start, end = note.sentences[note.error_sentence]
    text, sentences = substitute_in_note(note.text, note.sentences, start, end, note.corrected_sentence)
    return replace(note, note_id=note.note_id + "#corrected", text=text, sentences=sentences, error_sentence=-1,
                   error_type=None, error_span=None, corrected_sentence=None, claim_sentence=note.error_sentence)


@dataclass
class EncodedNote:
    """A labelled note with its windows and per-token span labels (aligned with each window)."""

    note: LabelledNote
    windows: list[Window]
    token_labels: list[np.ndarray]


def encode_labelled(encoder: NoteEncoder, notes: Sequence[LabelledNote]) -> list[EncodedNote]:
    """Windows and token labels for training; notes without tokens are dropped."""
    windows_per_note = encoder.encode_notes([(n.text, n.sentences) for n in notes])
    encoded = []
    for note, windows in zip(notes, windows_per_note):
        if not windows:
            continue
        labels = []
        for window in windows:
            label = np.zeros(window.length, dtype=np.float32)
            if note.error_span is not None:
                start, end = note.error_span
                inside = (window.offsets[:, 0] < end) & (window.offsets[:, 1] > start) & (window.offsets[:, 0] >= 0)
                label[inside] = 1.0
            labels.append(label)
        encoded.append(EncodedNote(note, windows, labels))
    return encoded


def labelled_from_medec(record) -> LabelledNote:
    """A :class:`LabelledNote` from a :class:`medcorr.medec.io.MedecRecord` (sentences aligned to the text)."""
    from medcorr.medec.io import align_sentences

    spans = tuple(align_sentences(record.text, [s.text for s in record.sentences]))
    if not record.error_flag:
        return LabelledNote(record.text_id, record.text, spans)
    ids = [s.id for s in record.sentences]
    if record.error_sentence_id not in ids:
        raise ValueError(f"{record.text_id}: error sentence id {record.error_sentence_id} is not in its sentences")
    position = ids.index(record.error_sentence_id)
    start, end = spans[position]
    corrected = record.corrected_sentence if record.corrected_sentence not in (None, "NA") else None
    local = diff_span(record.text[start:end], corrected) if corrected else (0, end - start)
    return LabelledNote(
        record.text_id, record.text, spans, error_sentence=position,
        error_type=ErrorType.from_medec(record.error_type) if record.error_type else None,
        error_span=(start + local[0], start + local[1]), corrected_sentence=corrected)


def read_labelled(paths) -> list[LabelledNote]:
    """Labelled notes from MEDEC CSV files (labels required)."""
    from medcorr.medec.io import ERROR_FLAG, ERROR_SENTENCE_ID, read_medec

    notes = []
    for path in paths:
        notes += [labelled_from_medec(r) for r in read_medec(path, require=(ERROR_FLAG, ERROR_SENTENCE_ID))]
    return notes


def substitution_examples(notes: Sequence[LabelledNote]) -> list[tuple[str, str, str]]:
    """``(error type, wrong span, corrected span)`` for every error note with a corrected sentence."""
    examples = []
    for note in notes:
        if not note.has_error or not note.corrected_sentence or note.error_span is None or note.error_type is None:
            continue
        start, end = note.sentences[note.error_sentence]
        wrong_sentence = note.text[start:end]
        right_start, right_end = diff_span(note.corrected_sentence, wrong_sentence)
        examples.append((note.error_type.value, note.text[note.error_span[0]:note.error_span[1]],
                         note.corrected_sentence[right_start:right_end]))
    return examples
