"""Reading MEDEC CSV files and reading/writing MEDIQA-CORR submission files.

MEDEC files as published are UTF-8 (sometimes with a BOM) with CRLF row ends; quoted cells hold LF line
breaks. The ``Sentences`` cell lists one sentence per line as ``<id> <sentence>``; a few sentences contain
stray line breaks, so a line that does not start with the next id continues the previous sentence.
Trailing rows may be empty. Labels may be absent (unlabeled test files) or written as floats (``1.0``) by
tools that read the file through pandas.

The submission format is the official MEDIQA-CORR 2024 one, one line per text::

    text_id error_flag error_sentence_id corrected_sentence

with ``0 -1 NA`` for a text without an error and the corrected sentence in double quotes when it contains
whitespace.
"""
from __future__ import annotations

import csv
import difflib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, TextIO

NA = "NA"

TEXT_ID = "Text ID"
TEXT = "Text"
SENTENCES = "Sentences"
ERROR_FLAG = "Error Flag"
ERROR_TYPE = "Error Type"
ERROR_SENTENCE_ID = "Error Sentence ID"
ERROR_SENTENCE = "Error Sentence"
CORRECTED_SENTENCE = "Corrected Sentence"
CORRECTED_TEXT = "Corrected Text"

#: Columns the scorer needs in a gold file.
LABEL_COLUMNS: tuple[str, ...] = (ERROR_FLAG, ERROR_SENTENCE_ID, CORRECTED_SENTENCE)

_SENTENCE_LINE = re.compile(r"^(\d+)(?:[ \t]+(.*))?$", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


class MedecFormatError(ValueError):
    """A MEDEC CSV or submission file that cannot be read; the message names the file and row."""


@dataclass(frozen=True)
class MedecSentence:
    """One sentence of the ``Sentences`` column: its MEDEC id and its text (stray line breaks kept)."""

    id: int
    text: str


@dataclass
class MedecRecord:
    """One MEDEC row. Label fields are None when the file has no such column or the cell is empty.

    ``corrected_sentence`` is ``"NA"`` for rows without an error, as in the published files.
    ``row`` is the 1-based CSV record number (header = 1), for error messages.
    """

    text_id: str
    text: str = ""
    sentences: list[MedecSentence] = field(default_factory=list)
    error_flag: int | None = None
    error_type: str | None = None
    error_sentence_id: int | None = None
    error_sentence: str | None = None
    corrected_sentence: str | None = None
    row: int = 0

    def sentence_by_id(self, sentence_id: int) -> MedecSentence | None:
        """The sentence with MEDEC id ``sentence_id``, or None."""
        for sentence in self.sentences:
            if sentence.id == sentence_id:
                return sentence
        return None


@dataclass(frozen=True)
class SubmissionLine:
    """One submission line. ``corrected_sentence`` None means ``NA``."""

    text_id: str
    error_flag: int
    error_sentence_id: int
    corrected_sentence: str | None = None

    def format(self) -> str:
        """The line as the official format writes it (no line end)."""
        return format_submission_line(self)


@dataclass
class Submission:
    """A parsed submission file: the lines by text id (the last one wins on duplicates) and what was
    skipped. ``invalid`` holds ``(line number, reason)``; ``duplicates`` the ids seen more than once."""

    lines: dict[str, SubmissionLine] = field(default_factory=dict)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- CSV


def normalize_space(text: str) -> str:
    """Collapse every whitespace run to one space and strip."""
    return _WHITESPACE.sub(" ", text).strip()


def parse_label_int(value: str | None, column: str, where: str) -> int | None:
    """A label cell as an int: ``1``, ``1.0`` and ``-1.0`` are read as 1, 1 and -1; empty, ``NA`` and
    ``nan`` give None. Anything else raises :class:`MedecFormatError`."""
    if value is None:
        return None
    text = value.strip()
    if text == "" or text.upper() in {"NA", "NAN"}:
        return None
    try:
        number = float(text)
    except ValueError:
        raise MedecFormatError(f"{where}: column {column!r} is not a number") from None
    if math.isnan(number):
        return None
    if not number.is_integer():
        raise MedecFormatError(f"{where}: column {column!r} is not an integer")
    return int(number)


def parse_sentences(cell: str, where: str = "Sentences") -> list[MedecSentence]:
    """Split a ``Sentences`` cell into sentences.

    A line is a new sentence when it is ``<id> <text>`` (or a bare ``<id>``) and ``id`` is the previous
    id plus one; the first sentence may have any id. Every other line, blank lines included, continues the
    previous sentence (joined with a line break). Leading blank lines are skipped; a first non-blank line
    without an id raises :class:`MedecFormatError`.
    """
    lines = cell.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    ids: list[int] = []
    parts: list[list[str]] = []
    for line in lines:
        match = _SENTENCE_LINE.match(line.strip(" \t"))
        if match is not None and (not ids or int(match.group(1)) == ids[-1] + 1):
            ids.append(int(match.group(1)))
            parts.append([match.group(2) or ""])
        elif parts:
            parts[-1].append(line)
        elif line.strip():
            raise MedecFormatError(f"{where}: the first sentence line does not start with a sentence id")
    return [MedecSentence(i, "\n".join(p).strip()) for i, p in zip(ids, parts)]


def _open_text(path: str | Path) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise MedecFormatError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MedecFormatError(f"{path}: not UTF-8 (byte {error.start})") from None


def read_medec(
    path: str | Path,
    require: Sequence[str] = (TEXT_ID,),
) -> list[MedecRecord]:
    """Read a MEDEC CSV into records, in file order.

    Empty rows (every cell blank) are skipped. ``require`` names the columns that must be present
    (``Text ID`` always is); a missing one raises :class:`MedecFormatError`. A row with an empty
    ``Text ID`` but other content, a duplicate id, or an unreadable label raises it too.
    """
    content = _open_text(path)
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise MedecFormatError(f"{path}: empty file") from None
    except csv.Error as error:
        raise MedecFormatError(f"{path}: not a CSV file ({error})") from None
    columns = {name.strip().lstrip("\ufeff"): index for index, name in enumerate(header)}
    missing = [name for name in dict.fromkeys((TEXT_ID, *require)) if name not in columns]
    if missing:
        raise MedecFormatError(f"{path}: missing column(s) {', '.join(repr(m) for m in missing)}")

    def cell(row: list[str], name: str) -> str | None:
        index = columns.get(name)
        if index is None or index >= len(row):
            return None
        return row[index]

    records: list[MedecRecord] = []
    seen: set[str] = set()
    try:
        for number, row in enumerate(reader, start=2):
            if not any(value.strip() for value in row):
                continue
            where = f"{path}: row {number}"
            text_id = (cell(row, TEXT_ID) or "").strip()
            if not text_id:
                raise MedecFormatError(f"{where}: empty 'Text ID'")
            if text_id in seen:
                raise MedecFormatError(f"{where}: duplicate text id {text_id!r}")
            seen.add(text_id)
            sentences_cell = cell(row, SENTENCES)
            error_type = (cell(row, ERROR_TYPE) or "").strip()
            error_sentence = cell(row, ERROR_SENTENCE)
            corrected = cell(row, CORRECTED_SENTENCE)
            if corrected is not None:
                corrected = normalize_space(corrected)
                if corrected == "" or corrected.upper() == "NAN":
                    corrected = NA
            records.append(
                MedecRecord(
                    text_id=text_id,
                    text=(cell(row, TEXT) or "").replace("\r\n", "\n").replace("\r", "\n"),
                    sentences=parse_sentences(sentences_cell, where) if sentences_cell else [],
                    error_flag=parse_label_int(cell(row, ERROR_FLAG), ERROR_FLAG, where),
                    error_type=error_type if error_type and error_type.upper() not in {"NA", "NAN"} else None,
                    error_sentence_id=parse_label_int(cell(row, ERROR_SENTENCE_ID), ERROR_SENTENCE_ID, where),
                    error_sentence=error_sentence,
                    corrected_sentence=corrected,
                    row=number,
                )
            )
    except csv.Error as error:
        raise MedecFormatError(f"{path}: CSV error ({error})") from None
    return records


# ----------------------------------------------------------------------------------------- alignment


def _fuzzy_align(text: str, sentences: Sequence[str]) -> list[tuple[int, int]]:
    """Character-level alignment of the sentences' non-whitespace characters to the text's."""
    text_pos = [i for i, ch in enumerate(text) if not ch.isspace()]
    text_chars = "".join(text[i] for i in text_pos)
    sent_chars: list[str] = []
    bounds: list[tuple[int, int]] = []
    offset = 0
    for sentence in sentences:
        compact = "".join(ch for ch in sentence if not ch.isspace())
        sent_chars.append(compact)
        bounds.append((offset, offset + len(compact)))
        offset += len(compact)
    matcher = difflib.SequenceMatcher(None, text_chars, "".join(sent_chars), autojunk=False)
    mapped: dict[int, int] = {}
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            mapped[b + k] = a + k
    spans: list[tuple[int, int]] = []
    previous_end = 0
    for begin, end in bounds:
        hits = [mapped[j] for j in range(begin, end) if j in mapped]
        if not hits or text_pos[hits[0]] < previous_end:
            spans.append((previous_end, previous_end))
            continue
        start = text_pos[hits[0]]
        stop = text_pos[hits[-1]] + 1
        spans.append((start, stop))
        previous_end = stop
    return spans


def align_sentences(text: str, sentences: Sequence[str]) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each sentence in ``text``, in order, ignoring whitespace differences.

    Each sentence is searched after the end of the previous one with whitespace made optional; when a
    sentence is not found verbatim (the source data has a few character differences), the whole note is
    aligned character by character instead. A sentence with nothing to align gets an empty span at the
    end of the previous one.
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for sentence in sentences:
        sentence = sentence.strip()
        following = cursor
        while following < len(text) and text[following].isspace():
            following += 1
        if sentence and text.startswith(sentence, following):  # the usual case: right after the last
            spans.append((following, following + len(sentence)))
            cursor = following + len(sentence)
            continue
        compact = [re.escape(ch) for ch in sentence if not ch.isspace()]
        if not compact:
            spans.append((cursor, cursor))
            continue
        match = re.compile(r"\s*".join(compact)).search(text, cursor)
        if match is None:
            return _fuzzy_align(text, sentences)
        spans.append((match.start(), match.end()))
        cursor = match.end()
    return spans


# ------------------------------------------------------------------------------------------ submission


def format_submission_line(line: SubmissionLine) -> str:
    """``text_id flag sentence_id correction``: ``NA`` for None, the sentence on one line and quoted
    when it contains whitespace."""
    if line.error_flag not in (0, 1):
        raise ValueError(f"error flag must be 0 or 1, not {line.error_flag!r}")
    if any(ch.isspace() for ch in line.text_id) or not line.text_id:
        raise ValueError(f"invalid text id {line.text_id!r}")
    correction = NA if line.corrected_sentence is None else normalize_space(line.corrected_sentence)
    if correction == "":
        correction = NA
    if " " in correction:
        correction = f'"{correction}"'
    return f"{line.text_id} {line.error_flag} {line.error_sentence_id} {correction}"


def write_submission(lines: Iterable[SubmissionLine], out: TextIO) -> int:
    """Write submission lines (``\\n`` ends); returns the number written."""
    count = 0
    for line in lines:
        out.write(format_submission_line(line) + "\n")
        count += 1
    return count


def parse_submission_line(text: str) -> SubmissionLine:
    """Parse one submission line; raises ValueError with the reason when it is not valid.

    Whitespace runs count as one separator (what the official script meant to do). The flag and the
    sentence id may be written as floats (``1.0``). One pair of double quotes around the correction is
    removed; a missing correction makes the line invalid, as in the official format.
    """
    parts = text.split(None, 3)
    if len(parts) < 4:
        raise ValueError("expected 4 fields: text_id error_flag error_sentence_id corrected_sentence")
    text_id, flag_text, sentence_text, correction = parts
    flag = parse_label_int(flag_text, "error_flag", "submission")
    sentence_id = parse_label_int(sentence_text, "error_sentence_id", "submission")
    if flag not in (0, 1):
        raise ValueError("error_flag must be 0 or 1")
    if sentence_id is None or sentence_id < -1:
        raise ValueError("error_sentence_id must be -1 or a sentence id")
    correction = normalize_space(correction)
    if len(correction) >= 2 and correction.startswith('"') and correction.endswith('"'):
        correction = correction[1:-1].strip()
    return SubmissionLine(text_id, flag, sentence_id, None if correction == NA else correction)


def read_submission(source: str | Path | TextIO) -> Submission:
    """Read a submission file (a path or an open text stream). Blank lines are ignored; invalid lines are
    recorded in :attr:`Submission.invalid` and skipped, as the official script does."""
    if isinstance(source, (str, Path)):
        content = _open_text(source)
    else:
        content = source.read()
    result = Submission()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = parse_submission_line(raw)
        except (ValueError, MedecFormatError) as error:
            reason = str(error).split(": ", 1)[-1] if isinstance(error, MedecFormatError) else str(error)
            result.invalid.append((number, reason))
            continue
        if line.text_id in result.lines:
            result.duplicates.append(line.text_id)
        result.lines[line.text_id] = line
    return result


def gold_submission(records: Iterable[MedecRecord]) -> list[SubmissionLine]:
    """The gold labels of labeled records as submission lines (for checks: it must score 1.0)."""
    lines = []
    for record in records:
        if record.error_flag is None or record.error_sentence_id is None:
            raise MedecFormatError(f"row {record.row}: {record.text_id!r} has no labels")
        corrected = record.corrected_sentence
        lines.append(
            SubmissionLine(
                record.text_id,
                record.error_flag,
                record.error_sentence_id,
                None if corrected in (None, NA) else corrected,
            )
        )
    return lines
