"""The offline KnowledgeGenerator on MEDEC-style notes whose right answer was swapped for a wrong one."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from medcorr.finding import ErrorType, Finding
from medcorr.generators.base import CorrectionRequest
from medcorr.generators.knowledge import KnowledgeGenerator

# (note with a wrong claim, the wrong span, its error type, the right answer that MEDEC would expect)
SWAPPED = [
    ("A 61-year-old man had an anterior myocardial infarction 2 weeks ago. His heart rate is 98/min and his "
     "ejection fraction is 35%. He is started on atenolol.", "atenolol", ErrorType.PHARMACOTHERAPY, "metoprolol"),
    ("A 55-year-old man with type 2 diabetes has persistent albuminuria and a blood pressure of 150/95 mm Hg. "
     "He is started on enalapril.", "enalapril", ErrorType.PHARMACOTHERAPY, "lisinopril"),
    ("A 45-year-old man who injects drugs has fever and a new murmur at the left lower sternal border. "
     "Echocardiography shows a tricuspid vegetation. Blood cultures grow Gram-positive cocci in clusters that "
     "are coagulase positive. The causal organism is Staphylococcus epidermidis.",
     "Staphylococcus epidermidis", ErrorType.CAUSAL_ORGANISM, "Staphylococcus aureus"),
    ("A 24-year-old woman has bloody diarrhea with tenesmus for 2 months. Colonoscopy shows continuous "
     "inflammation from the rectum upward with crypt abscesses. She is diagnosed with Crohn disease.",
     "Crohn disease", ErrorType.DIAGNOSIS, "ulcerative colitis"),
    ("A 7-year-old boy has otitis media. He is allergic to nothing. He is treated with ampicillin.",
     "ampicillin", ErrorType.PHARMACOTHERAPY, "amoxicillin"),
]


def request_for(note: str, span: str, error_type: ErrorType) -> CorrectionRequest:
    start = note.rindex(span)
    sentence_start = note.rindex(". ", 0, start) + 2
    sentences = ((0, sentence_start - 1), (sentence_start, len(note)))
    finding = Finding(start=start, end=start + len(span), text=span, type=error_type, score=0.9, sentence=1)
    return CorrectionRequest(note, sentences, finding)


@pytest.fixture()
def generator(tmp_path: Path) -> KnowledgeGenerator:
    """Lexicon siblings only: an empty substitution table, so no pair learned from MEDEC can help."""
    (tmp_path / "substitutions.json").write_text("{}", encoding="utf-8")
    return KnowledgeGenerator(top_k=5, substitutions_path=str(tmp_path / "substitutions.json"))


@pytest.mark.parametrize("note,span,error_type,right", SWAPPED, ids=[s[3] for s in SWAPPED])
def test_the_right_answer_is_among_the_top_5(generator, note, span, error_type, right):
    proposal = generator([request_for(note, span, error_type)])[0]
    texts = [text.lower() for text, _ in proposal.candidates]
    assert len(texts) == 5 and right.lower() in texts
    assert span.lower() not in texts  # never proposes the span itself
    scores = [score for _, score in proposal.candidates]
    assert scores == sorted(scores, reverse=True)


def test_proposals_are_deterministic(generator):
    requests = [request_for(*case[:3]) for case in SWAPPED]
    assert generator(requests) == generator(list(requests))
    assert generator(requests) == KnowledgeGenerator(
        top_k=5, substitutions_path=generator._substitutions_path)(requests)


def test_learned_pairs_come_before_lexicon_siblings(tmp_path):
    table = {"PHARMACOTHERAPY": {"atenolol": {"carvedilol": 2}}}
    (tmp_path / "substitutions.json").write_text(json.dumps(table), encoding="utf-8")
    generator = KnowledgeGenerator(top_k=5, substitutions_path=str(tmp_path / "substitutions.json"))
    candidates = generator([request_for(*SWAPPED[0][:3])])[0].candidates
    assert candidates[0][0] == "carvedilol" and "metoprolol" in [c for c, _ in candidates[1:]]


def test_a_span_typed_as_another_kind_still_gets_its_own_kinds_siblings(generator):
    note, span, _, right = SWAPPED[2]  # an organism span with the wrong error type
    texts = [text for text, _ in generator([request_for(note, span, ErrorType.DIAGNOSIS)])[0].candidates]
    assert right in texts


def test_an_indefinite_article_before_the_concept_agrees_with_the_replacement(generator):
    note = "A 30-year-old woman has sudden pelvic pain and vomiting. The diagnosis is an ovarian torsion."
    texts = [text for text, _ in generator([request_for(note, "an ovarian torsion", ErrorType.DIAGNOSIS)])[0].candidates]
    assert texts
    for text in texts:
        article, rest = text.split(" ", 1)
        assert article in ("a", "an") and (article == "an") == (rest[0].lower() in "aeiou"), text


def test_rescoring_runs_one_detector_call_per_batch_of_findings(monkeypatch):
    nlp = spacy.blank("en")
    component = nlp.add_pipe("medcorr", config={"generator": {"@medcorr_generators": "medcorr.KnowledgeGenerator.v1",
                                                              "rescore_top": 3}})
    generator = component.generator
    calls = []
    predict = component.detector.predict
    monkeypatch.setattr(component.detector, "predict", lambda notes, *a, **k: calls.append(len(notes)) or predict(notes, *a, **k))
    proposals = generator([request_for(*case[:3]) for case in SWAPPED])
    assert calls == [3 * len(SWAPPED)]
    for proposal, (_, span, _, _) in zip(proposals, SWAPPED):
        assert proposal.candidates and all(0.0 <= score <= 1.0 for _, score in proposal.candidates)
        assert span.lower() not in [text.lower() for text, _ in proposal.candidates]


def test_the_component_types_an_organism_claim_as_a_causal_organism_and_shows_siblings_as_alternatives():
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr")
    note, span, error_type, right = SWAPPED[2]
    doc = nlp(note)
    claim = next(s._.medcorr for s in doc.spans["medcorr_claims"] if s.text == span)
    assert claim.type is error_type  # the span is an organism, whatever the type head prefers
    assert right in claim.alternatives and claim.alternatives == sorted(claim.alternatives, key=str.lower)
    assert claim.correction is None and claim.corrected_sentence is None  # alternatives are not a correction
