"""medcorr's fast clinical sentence splitter, alone, as a spaCy pipe, inside the component, and on MEDEC."""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy

from medcorr.sentences import ClinicalSentencizer, sentence_spans

MEDEC = Path(__file__).resolve().parents[2] / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def split(nlp, text):
    return [text[start:end] for start, end in sentence_spans(nlp.make_doc(text))]


@pytest.mark.parametrize("text,expected", [
    ("Dr. Smith gave 2.5 mg at 8 a.m. today. She is well.",
     ["Dr. Smith gave 2.5 mg at 8 a.m. today.", "She is well."]),
    ("He takes metformin 500 mg p.o. t.i.d. She is well.", ["He takes metformin 500 mg p.o. t.i.d.", "She is well."]),
    ("Temp 38.5 C. BP 120/80 mm Hg. HR 80/min.", ["Temp 38.5 C.", "BP 120/80 mm Hg.", "HR 80/min."]),
    ("Potassium is 3.0 mEq/L. The patient is given saline.", ["Potassium is 3.0 mEq/L.", "The patient is given saline."]),
    ("See e.g. the CBC. vs. baseline, i.e. none.", ["See e.g. the CBC. vs. baseline, i.e. none."]),
    ("J. Smith saw him. He agreed.", ["J. Smith saw him.", "He agreed."]),
    ('He said "I am fine." Then he left (see note.) Next.', ['He said "I am fine."', "Then he left (see note.)", "Next."]),
    ("1. Aspirin daily.\n2. Stop smoking.", ["1. Aspirin daily.", "2. Stop smoking."]),
    ("Meds:\n- lisinopril\n- aspirin\n\nplan follows", ["Meds:", "- lisinopril", "- aspirin", "plan follows"]),
    ("Pain in the left\nleg since Monday. Better now.", ["Pain in the left\nleg since Monday.", "Better now."]),
    ("no period at the end", ["no period at the end"]),
])
def test_clinical_sentence_boundaries(nlp, text, expected):
    assert split(nlp, text) == expected


def test_empty_and_whitespace_docs(nlp):
    assert sentence_spans(nlp.make_doc("")) == []
    assert sentence_spans(nlp.make_doc("   \n ")) == []


def test_pipe_sets_sentence_starts_and_keeps_existing_ones(nlp):
    doc = nlp.make_doc("He has fever. She has cough.")
    ClinicalSentencizer()(doc)
    assert [s.text for s in doc.sents] == ["He has fever.", "She has cough."]
    preset = nlp.make_doc("He has fever. She has cough.")
    for token in preset:
        token.is_sent_start = token.i == 0
    ClinicalSentencizer()(preset)
    assert len(list(preset.sents)) == 1
    ClinicalSentencizer(overwrite=True)(preset)
    assert len(list(preset.sents)) == 2
    partly = nlp.make_doc("He has fever. She has cough. It is worse.")
    partly[4].is_sent_start = False  # "She": set by an earlier component; the other tokens are not set
    ClinicalSentencizer()(partly)
    assert [s.text for s in partly.sents] == ["He has fever. She has cough.", "It is worse."]


def test_factory_is_available_without_importing_medcorr():
    code = ("import spacy; nlp = spacy.blank('en'); nlp.add_pipe('medcorr_sentencizer'); "
            "print(len(list(nlp('One. Two.').sents)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "2"


def test_component_splits_with_it_by_default_and_can_use_pyrush():
    text = "No fever. Potassium is 3.0 mEq/L. The causal organism is Streptococcus pneumoniae."
    default = spacy.blank("en")
    component = default.add_pipe("medcorr")
    assert isinstance(component.sentencizer, ClinicalSentencizer)
    assert [s.text for s in default(text).sents] == [
        "No fever.", "Potassium is 3.0 mEq/L.", "The causal organism is Streptococcus pneumoniae."]
    pyrush = spacy.blank("en")
    assert type(pyrush.add_pipe("medcorr", config={"sentencizer": "pyrush"}).sentencizer).__name__ == "PyRuSHSentencizer"
    with pytest.raises(ValueError, match="sentencizer"):
        spacy.blank("en").add_pipe("medcorr", config={"sentencizer": "nltk"})


@pytest.mark.medec
@pytest.mark.skipif(not MEDEC.is_file(), reason="needs ../shared/medec")
def test_on_medec_it_matches_the_reference_sentences_at_least_as_well_as_pyrush_and_is_much_faster(nlp):
    from PyRuSH import PyRuSHSentencizer

    from medcorr.component import _silence_pyrush, _spans_from_starts
    from medcorr.train.data import read_labelled

    _silence_pyrush()
    notes = read_labelled([MEDEC])
    docs = [nlp.make_doc(n.text) for n in notes]
    started = time.perf_counter()
    fast = [sentence_spans(doc) for doc in docs]
    fast_s = time.perf_counter() - started
    rush = PyRuSHSentencizer(nlp)
    started = time.perf_counter()
    reference = [_spans_from_starts(doc, starts) for doc, starts in zip(docs, rush.predict(docs))]
    rush_s = time.perf_counter() - started

    def f1(predicted):
        tp = fp = fn = 0
        for note, spans in zip(notes, predicted):
            gold, got = {s for s, _ in note.sentences}, {s for s, _ in spans}
            tp, fp, fn = tp + len(gold & got), fp + len(got - gold), fn + len(gold - got)
        return 2 * tp / (2 * tp + fp + fn)

    assert f1(fast) >= f1(reference) and f1(fast) > 0.88
    assert fast_s * 10 < rush_s
