"""Tests of the candidate-span matcher over real spaCy Docs and the shipped lexicon."""
from __future__ import annotations

import spacy
import pytest

from medcorr.candidates import (
    KIND_LABELS,
    CandidateMatcher,
    candidates_by_label,
    kind_for_label,
    label_for_kind,
)
from medcorr.finding import ErrorType
from medcorr.lexicon import Lexicon


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


@pytest.fixture(scope="module")
def matcher(nlp) -> CandidateMatcher:
    return CandidateMatcher(nlp)


def _found(matcher: CandidateMatcher, nlp, text: str) -> list[tuple[str, str]]:
    return [(c.text, c.label) for c in matcher(nlp(text))]


def test_sentence_gets_the_right_spans_and_labels(matcher, nlp) -> None:
    text = ("A 24-year-old man with urethritis was treated with ceftriaxone for Neisseria gonorrhoeae; "
            "a lumbar puncture was performed for suspected meningitis.")
    assert _found(matcher, nlp, text) == [
        ("urethritis", "DIAGNOSIS"),
        ("ceftriaxone", "PHARMACOTHERAPY"),
        ("Neisseria gonorrhoeae", "CAUSAL_ORGANISM"),
        ("lumbar puncture", "MANAGEMENT"),
        ("meningitis", "DIAGNOSIS"),
    ]


def test_candidate_fields(matcher, nlp) -> None:
    doc = nlp("Started amoxicillin today.")
    (cand,) = matcher(doc)
    assert cand.kind == "drug" and cand.kinds == ("drug",)
    assert cand.error_type is ErrorType.PHARMACOTHERAPY
    assert cand.entry is not None and cand.entry.id == "DB01060"
    assert doc.text[cand.start_char:cand.end_char] == cand.text == "amoxicillin"
    assert cand.span.label_ == "PHARMACOTHERAPY" and cand.span.kb_id_ == "DB01060"


def test_longest_match_wins(matcher, nlp) -> None:
    assert _found(matcher, nlp, "Findings consistent with acute pancreatitis.") == [
        ("acute pancreatitis", "DIAGNOSIS")]
    assert _found(matcher, nlp, "Order a CT scan of the abdomen now.") == [
        ("CT scan of the abdomen", "MANAGEMENT")]
    assert _found(matcher, nlp, "History of type 2 diabetes mellitus.") == [
        ("type 2 diabetes mellitus", "DIAGNOSIS")]
    # adjacent spans of different kinds do not swallow each other
    assert _found(matcher, nlp, "Streptococcus pneumoniae pneumonia") == [
        ("Streptococcus pneumoniae", "CAUSAL_ORGANISM"), ("pneumonia", "DIAGNOSIS")]


def test_case_hyphen_and_abbreviation_variants(matcher, nlp) -> None:
    assert _found(matcher, nlp, "PNEUMONIA on the left") == [("PNEUMONIA", "DIAGNOSIS")]
    assert _found(matcher, nlp, "non-Hodgkin lymphoma and non Hodgkin lymphoma") == [
        ("non-Hodgkin lymphoma", "DIAGNOSIS"), ("non Hodgkin lymphoma", "DIAGNOSIS")]
    assert _found(matcher, nlp, "Stool grew E. coli.") == [("E. coli", "CAUSAL_ORGANISM")]


def test_blocking_phrases_hide_other_senses(matcher, nlp) -> None:
    assert _found(matcher, nlp, "ECG shows ST depression in V4-V6.") == [("ECG", "MANAGEMENT")]
    assert _found(matcher, nlp, "History of depression.") == [("depression", "DIAGNOSIS")]


def test_acronyms_match_only_in_capitals(matcher, nlp) -> None:
    assert _found(matcher, nlp, "Known COPD, now with GAS pharyngitis.") == [
        ("COPD", "DIAGNOSIS"), ("GAS", "CAUSAL_ORGANISM"), ("pharyngitis", "DIAGNOSIS")]
    assert _found(matcher, nlp, "No abdominal gas was seen.") == []


def test_symptoms_are_skipped_unless_asked(nlp, matcher) -> None:
    text = "She has fever and cough."
    assert _found(matcher, nlp, text) == []
    with_symptoms = CandidateMatcher(nlp, include_symptoms=True)
    assert _found(with_symptoms, nlp, text) == [("fever", "DIAGNOSIS"), ("cough", "DIAGNOSIS")]


def test_kinds_filter(nlp) -> None:
    only_drugs = CandidateMatcher(nlp, kinds=["drug"])
    assert _found(only_drugs, nlp, "Pneumonia treated with azithromycin.") == [
        ("azithromycin", "PHARMACOTHERAPY")]
    with pytest.raises(ValueError):
        CandidateMatcher(nlp, kinds=["disease"])


def test_span_input_spans_and_set_spans(matcher, nlp) -> None:
    doc = nlp("Pneumonia was treated. Then metformin was started.")
    sentence = doc[4:]
    assert [c.text for c in matcher(sentence)] == ["metformin"]
    spans = matcher.spans(doc)
    assert [(s.text, s.label_) for s in spans] == [("Pneumonia", "DIAGNOSIS"), ("metformin", "PHARMACOTHERAPY")]
    matcher.set_spans(doc)
    assert [s.text for s in doc.spans["medcorr_candidates"]] == ["Pneumonia", "metformin"]
    assert matcher(nlp("")) == []


def test_groups_by_label(matcher, nlp) -> None:
    grouped = candidates_by_label(matcher(nlp("Pneumonia and sepsis; vancomycin given.")))
    assert [c.text for c in grouped["DIAGNOSIS"]] == ["Pneumonia", "sepsis"]
    assert [c.text for c in grouped["PHARMACOTHERAPY"]] == ["vancomycin"]


def test_compiled_matcher_is_shared(nlp, matcher) -> None:
    again = CandidateMatcher(nlp)
    assert again._compiled is matcher._compiled
    assert matcher.tokenization_mode == "en"
    assert matcher.n_patterns > 50_000
    other_pipeline = spacy.blank("en")
    assert CandidateMatcher(other_pipeline)._compiled is matcher._compiled  # same tokenisation rules


def test_custom_tokenizer_gets_its_own_patterns() -> None:
    from medspacy.custom_tokenizer import create_medspacy_tokenizer

    nlp = spacy.blank("en")
    nlp.tokenizer = create_medspacy_tokenizer(nlp)  # splits "HSV-1" and "covid-19" unlike spaCy English
    matcher = CandidateMatcher(nlp)
    assert matcher.tokenization_mode != "en"
    assert _found(matcher, nlp, "PCR positive for HSV-1 encephalitis.") == [
        ("PCR", "MANAGEMENT"), ("HSV-1", "CAUSAL_ORGANISM"), ("encephalitis", "DIAGNOSIS")]


def test_config_round_trip(nlp, matcher) -> None:
    config = matcher.to_config()
    assert config["kinds"] == ["diagnosis", "drug", "organism", "procedure"]
    rebuilt = CandidateMatcher.from_config(nlp, config)
    assert rebuilt._compiled is matcher._compiled
    assert rebuilt.lexicon is Lexicon.load()


def test_label_mapping() -> None:
    assert label_for_kind("organism") is ErrorType.CAUSAL_ORGANISM
    assert kind_for_label("MANAGEMENT") == "procedure"
    assert kind_for_label(ErrorType.DIAGNOSIS) == "diagnosis"
    assert kind_for_label("TREATMENT") is None
    assert set(KIND_LABELS) == {"diagnosis", "drug", "organism", "procedure"}
    with pytest.raises(ValueError):
        label_for_kind("disease")
