"""Windowing and batching of notes: every sentence of a long note is scored, nothing is silently cut."""
import numpy as np
import pytest

from medcorr.detector import TOKENIZER_FILE, default_model_dir
from medcorr.encoding import NoteEncoder, length_buckets


@pytest.fixture(scope="module")
def encoder():
    return NoteEncoder(default_model_dir() / TOKENIZER_FILE, max_length=64)


def _note(sentences):
    text, spans, cursor = "", [], 0
    for sentence in sentences:
        spans.append((cursor, cursor + len(sentence)))
        text += sentence + " "
        cursor = len(text)
    return text, spans


def test_long_note_is_windowed_and_every_sentence_covered(encoder):
    text, spans = _note([f"Sentence number {i} says the patient is stable." for i in range(250)])
    windows = encoder.encode_notes([(text, spans)])[0]
    assert len(windows) > 10
    covered = sorted({s for w in windows for s in w.segment_sentences})
    assert covered == list(range(250))
    assert all(w.length <= 64 for w in windows)


def test_sentence_longer_than_window_is_split_not_truncated(encoder):
    long_sentence = " ".join(["fever"] * 200)
    text, spans = _note(["Short one.", long_sentence, "Last one."])
    windows = encoder.encode_notes([(text, spans)])[0]
    pieces = [(w, local) for w in windows for local, s in enumerate(w.segment_sentences) if s == 1]
    assert len(pieces) >= 4
    assert sum(int((w.segment_of_token == local).sum()) for w, local in pieces) == 200


def test_a_note_that_fits_one_window_gets_what_packing_would_give(encoder):
    notes = [_note(["Fever and cough.", "", "Given amoxicillin.", "Stable."]), _note(["One sentence only."]),
             ("Text before the first sentence. Then one.", [(32, 41)])]
    for index, (text, spans) in enumerate(notes):
        (window,) = encoder.encode_notes([(text, spans)])[0]
        encoding = encoder.tokenizer.encode(text, add_special_tokens=False)
        ids, offsets = np.asarray(encoding.ids), np.asarray(encoding.offsets).reshape(-1, 2)
        starts = np.asarray([start for start, _ in spans])
        sentence_of_token = np.clip(np.searchsorted(starts, offsets[:, 0], side="right") - 1, 0, len(spans) - 1)
        (packed,) = encoder._packed_windows(0, ids, offsets, sentence_of_token)
        assert window.segment_sentences == packed.segment_sentences
        for name in ("input_ids", "offsets", "segment_of_token"):
            expected = getattr(packed, name)
            assert np.array_equal(getattr(window, name), expected) and getattr(window, name).dtype == expected.dtype


def test_empty_note_has_no_windows(encoder):
    assert encoder.encode_notes([("", []), ("   ", [(0, 3)])]) == [[], []]


def test_collate_pads_to_longest_and_mean_pools(encoder):
    notes = [_note(["One short sentence."]), _note(["A somewhat longer sentence with more tokens in it.", "And two."])]
    windows = [w for ws in encoder.encode_notes(notes) for w in ws]
    batch = encoder.collate(windows)
    assert batch.input_ids.shape[1] == max(w.length for w in windows)
    assert batch.segment_mask.shape[1] == 2
    sums = batch.segment_mask.sum(axis=2)
    assert np.allclose(sums[1], [1.0, 1.0]) and np.allclose(sums[0], [1.0, 0.0])
    assert batch.real_tokens == sum(w.length for w in windows)


def test_length_buckets_group_similar_lengths(encoder):
    texts = [_note(["word " * n]) for n in (3, 40, 5, 38)]
    windows = [w for ws in encoder.encode_notes(texts) for w in ws]
    buckets = length_buckets(windows, 2)
    lengths = [[windows[i].length for i in b] for b in buckets]
    assert max(lengths[0]) < min(lengths[1])


def test_length_buckets_with_max_padding_bound_the_padding(encoder):
    lengths = [5, 6, 6, 7, 30, 31, 60, 8, 9, 59]
    notes = [_note([" ".join(["fever"] * (n - 2))]) for n in lengths]
    windows = [w for ws in encoder.encode_notes(notes) for w in ws]
    unbounded = length_buckets(windows, 16)
    bounded = length_buckets(windows, 16, max_padding=0.1)
    assert len(unbounded) == 1 and len(bounded) > 1
    assert sorted(i for b in bounded for i in b) == list(range(len(windows)))
    for bucket in bounded:
        real = sum(windows[i].length for i in bucket)
        assert len(bucket) * max(windows[i].length for i in bucket) <= real * 1.1
    assert all(len(b) <= 3 for b in length_buckets(windows, 3, max_padding=10.0))


def test_substitute_in_note_shifts_only_the_sentences_at_and_after_the_span():
    from medcorr.generators.base import substitute_in_note

    note = "Fever. Treated with amoxicillin. Discharged."
    spans = ((0, 6), (7, 32), (33, 44))
    start = note.index("amoxicillin")
    text, shifted = substitute_in_note(note, spans, start, start + len("amoxicillin"), "ceftriaxone IV")
    assert text == "Fever. Treated with ceftriaxone IV. Discharged."
    assert [text[s:e] for s, e in shifted] == ["Fever.", "Treated with ceftriaxone IV.", "Discharged."]
