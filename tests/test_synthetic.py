"""Synthetic lexicon-sibling swaps used as extra training notes (needs no torch)."""
from pathlib import Path

import pytest

from medcorr.lexicon import Lexicon
from medcorr.substitutions import normalize
from medcorr.train.data import corrected_copy, read_labelled
from medcorr.train.synthetic import match_case, synthetic_swaps

TINY = Path(__file__).parent / "fixtures" / "train_tiny.csv"


@pytest.fixture(scope="module")
def notes():
    return read_labelled([TINY])


@pytest.fixture(scope="module")
def lexicon():
    return Lexicon.load()


def test_each_swap_is_a_sibling_error_paired_with_the_clean_twin(notes, lexicon):
    swaps = synthetic_swaps(notes, per_note=2, seed=0, lexicon=lexicon)
    errors = [n for n in swaps if n.has_error]
    assert errors and len(swaps) == 2 * len(errors)
    by_id = {n.note_id: n for n in notes}
    for error in errors:
        source = by_id[error.note_id.split("#")[0]]
        twin = corrected_copy(source)
        clean = next(n for n in swaps if n.note_id == error.note_id + "-clean")
        assert not clean.has_error and clean.text == twin.text and clean.claim_sentence == error.error_sentence
        assert error.error_type == source.error_type
        start, end = error.sentences[error.error_sentence]
        assert error.text[:start] == twin.text[:start]  # only the claim sentence changes
        swapped = error.text[slice(*error.error_span)]
        assert normalize(swapped) != normalize(source.text[slice(*source.error_span)])  # not the real error again
        assert start <= error.error_span[0] < error.error_span[1] <= end
        assert swapped in error.text[start:end] and swapped not in twin.text[start:end]


def test_swaps_are_seeded_and_none_when_disabled(notes, lexicon):
    assert synthetic_swaps(notes, 0, seed=0, lexicon=lexicon) == []
    first = synthetic_swaps(notes, 2, seed=5, lexicon=lexicon)
    assert first == synthetic_swaps(notes, 2, seed=5, lexicon=lexicon)


def test_clean_notes_give_no_swaps(notes, lexicon):
    assert synthetic_swaps([n for n in notes if not n.has_error], 3, seed=0, lexicon=lexicon) == []


def test_match_case_keeps_sentence_initial_capitals_and_acronyms():
    assert match_case("haloperidol", "Olanzapine") == "Haloperidol"
    assert match_case("Penicillin G", "amoxicillin") == "penicillin G"
    assert match_case("MRI", "ultrasonography") == "MRI"
