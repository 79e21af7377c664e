"""MEDEC CSV parsing, sentence alignment and the submission format."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from medcorr.medec.io import (
    LABEL_COLUMNS,
    NA,
    MedecFormatError,
    SubmissionLine,
    align_sentences,
    format_submission_line,
    gold_submission,
    normalize_space,
    parse_label_int,
    parse_sentences,
    parse_submission_line,
    read_medec,
    read_submission,
    write_submission,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "medec"
SHARED_MEDEC = Path(__file__).resolve().parents[1].parent / "shared" / "medec"
SHARED_VAL = SHARED_MEDEC / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"


def _compact(text: str) -> str:
    return "".join(text.split())


# ------------------------------------------------------------------------------------------- parsing


def test_fixture_is_published_format():
    raw = (FIXTURES / "labeled.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw and b",,,,,,,,\r\n" in raw  # CRLF rows and empty trailing rows
    assert b"1.0" in raw and b"-1.0" in raw


def test_read_labeled_fixture():
    records = read_medec(FIXTURES / "labeled.csv", require=LABEL_COLUMNS)
    assert [r.text_id for r in records] == ["fx-0", "fx-1", "FX-2", "fx-3", "fx-4"]  # empty rows skipped
    first = records[0]
    assert (first.error_flag, first.error_sentence_id, first.error_type) == (1, 2, "pharmacotherapy")
    assert first.corrected_sentence == "She is treated with oral nitrofurantoin for three days."
    no_error = records[1]
    assert (no_error.error_flag, no_error.error_sentence_id, no_error.error_type) == (0, -1, None)
    assert no_error.corrected_sentence == NA
    assert "\r" not in "".join(r.text for r in records)
    assert records[2].sentences[1].text == "ECG shows ST elevation in leads II\\III\\aVF."


def test_stray_line_breaks_continue_the_sentence():
    record = read_medec(FIXTURES / "labeled.csv")[1]
    assert [s.id for s in record.sentences] == [0, 1, 2, 3]
    assert record.sentences[1].text == "Laboratory studies show:\nHemoglobin 9.1 g/dL"
    assert record.sentences[3].text == "L\n\nHe is started on oral iron."


def test_parse_sentences_rules():
    cell = "0 First.\r\nsecond line\r\n1 Two.\n5 mg daily is not an id\n2 Three.\n\n"
    sentences = parse_sentences(cell)
    assert [(s.id, s.text) for s in sentences] == [
        (0, "First.\nsecond line"),
        (1, "Two.\n5 mg daily is not an id"),
        (2, "Three."),
    ]
    assert [s.id for s in parse_sentences("1 A.\n2 B.")] == [1, 2]  # ids need not start at 0
    with pytest.raises(MedecFormatError):
        parse_sentences("no id here\n0 A.")


def test_unlabeled_file_has_no_labels():
    records = read_medec(FIXTURES / "unlabeled.csv", require=("Text", "Sentences"))
    assert len(records) == 2
    assert all(r.error_flag is None and r.corrected_sentence is None for r in records)
    with pytest.raises(MedecFormatError, match="Error Flag"):
        read_medec(FIXTURES / "unlabeled.csv", require=LABEL_COLUMNS)


@pytest.mark.parametrize(
    "value, expected",
    [("1", 1), ("1.0", 1), (" -1.0 ", -1), ("0", 0), ("", None), ("NA", None), ("nan", None)],
)
def test_parse_label_int(value, expected):
    assert parse_label_int(value, "Error Flag", "row") == expected


@pytest.mark.parametrize("value", ["yes", "1.5"])
def test_parse_label_int_rejects(value):
    with pytest.raises(MedecFormatError):
        parse_label_int(value, "Error Flag", "row")


def test_bad_files(tmp_path):
    empty_id = tmp_path / "empty_id.csv"
    empty_id.write_text("Text ID,Text,Sentences\r\n,some text,0 some text\r\n", encoding="utf-8")
    with pytest.raises(MedecFormatError, match="row 2"):
        read_medec(empty_id)
    duplicate = tmp_path / "dup.csv"
    duplicate.write_text("Text ID,Text\r\na,x\r\na,y\r\n", encoding="utf-8")
    with pytest.raises(MedecFormatError, match="duplicate"):
        read_medec(duplicate)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Text ID,Text\r\na,caf\xe9\r\n".encode("latin-1"))
    with pytest.raises(MedecFormatError, match="UTF-8"):
        read_medec(latin)
    with pytest.raises(MedecFormatError, match="cannot read"):
        read_medec(tmp_path / "missing.csv")


# ------------------------------------------------------------------------------------------ alignment


def test_alignment_tolerates_whitespace_differences():
    records = read_medec(FIXTURES / "labeled.csv")
    for record in records[:4]:
        spans = align_sentences(record.text, [s.text for s in record.sentences])
        assert [_compact(record.text[a:b]) for a, b in spans] == [_compact(s.text) for s in record.sentences]


def test_alignment_falls_back_to_character_alignment():
    record = read_medec(FIXTURES / "labeled.csv")[4]  # 'Â' and '°' are not in the text
    spans = align_sentences(record.text, [s.text for s in record.sentences])
    texts = [record.text[a:b] for a, b in spans]
    assert texts[0] == "A 67-year-old man has a painful rash."
    assert texts[1].startswith("His temperature is 36.9")
    assert texts[2].startswith("C (97.9 F)")
    assert texts[3] == "Patient is prescribed oral acyclovir."


def test_alignment_repeated_sentences_stay_in_order():
    text = "Stable. Pain. Stable. Pain."
    assert align_sentences(text, ["Stable.", "Pain.", "Stable.", "Pain."]) == [(0, 7), (8, 13), (14, 21), (22, 27)]


# ----------------------------------------------------------------------------------------- submission


def test_format_submission_lines():
    assert format_submission_line(SubmissionLine("ms-val-1", 0, -1, None)) == "ms-val-1 0 -1 NA"
    line = SubmissionLine("ms-val-0", 1, 5, "Culture tests indicate\nTrichomonas  vaginalis.")
    assert line.format() == 'ms-val-0 1 5 "Culture tests indicate Trichomonas vaginalis."'
    assert format_submission_line(SubmissionLine("a", 1, 2, "Hg.")) == "a 1 2 Hg."
    with pytest.raises(ValueError):
        format_submission_line(SubmissionLine("a", 2, 2, None))
    with pytest.raises(ValueError):
        format_submission_line(SubmissionLine("a b", 1, 2, None))


def test_submission_round_trip():
    lines = [
        SubmissionLine("MS-VAL-0", 1, 5, 'He says "no" to C:\\temp\\x.'),
        SubmissionLine("ms-val-1", 0, -1, None),
        SubmissionLine("ms-val-2", 1, 0, "Single"),
    ]
    buffer = io.StringIO()
    assert write_submission(lines, buffer) == 3
    parsed = read_submission(io.StringIO(buffer.getvalue()))
    assert list(parsed.lines.values()) == lines
    assert parsed.invalid == [] and parsed.duplicates == []


def test_parse_submission_line_variants():
    line = parse_submission_line('UW-Test-7\t1.0   3.0\t"a   \\d b\\"')
    assert line == SubmissionLine("UW-Test-7", 1, 3, "a \\d b\\")
    assert parse_submission_line("x 0 -1 NA").corrected_sentence is None
    assert parse_submission_line('x 0 -1 "NA"').corrected_sentence is None
    for bad in ["x 1 3", "x 2 3 foo", "x 1 -2 foo", "x one 3 foo"]:
        with pytest.raises((ValueError, MedecFormatError)):
            parse_submission_line(bad)


def test_read_submission_skips_invalid_and_reports_duplicates():
    text = "a 1 2 fix\n\nbroken line\nb 0 -1 NA\na 1 3 other\n"
    parsed = read_submission(io.StringIO(text))
    assert set(parsed.lines) == {"a", "b"}
    assert parsed.lines["a"].error_sentence_id == 3  # last wins
    assert parsed.duplicates == ["a"]
    assert [number for number, _ in parsed.invalid] == [3]


def test_gold_submission_from_labels():
    records = read_medec(FIXTURES / "labeled.csv", require=LABEL_COLUMNS)
    lines = gold_submission(records)
    assert lines[0] == SubmissionLine("fx-0", 1, 2, "She is treated with oral nitrofurantoin for three days.")
    assert lines[1] == SubmissionLine("fx-1", 0, -1, None)
    with pytest.raises(MedecFormatError):
        gold_submission(read_medec(FIXTURES / "unlabeled.csv"))


# ------------------------------------------------------------------------------------ the shared file


@pytest.mark.medec
def test_shared_validation_file_parses():
    if not SHARED_VAL.is_file():
        pytest.skip("../shared/medec is absent")
    records = read_medec(SHARED_VAL, require=("Text", "Sentences", *LABEL_COLUMNS))
    assert len(records) == 574
    assert sum(r.error_flag == 1 for r in records) == 319
    for record in records:
        assert [s.id for s in record.sentences] == list(range(len(record.sentences))), record.text_id
        if record.error_flag == 1:
            sentence = record.sentence_by_id(record.error_sentence_id)
            assert sentence is not None, record.text_id
            assert normalize_space(sentence.text) == normalize_space(record.error_sentence or ""), record.text_id
        else:
            assert record.error_sentence_id == -1 and record.corrected_sentence == NA
        spans = align_sentences(record.text, [s.text for s in record.sentences])
        starts = [start for start, _ in spans]
        assert starts == sorted(starts) and len(set(starts)) == len(starts), record.text_id
