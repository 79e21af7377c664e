"""Trust: no flag without a source of measured discrimination, no correction without a source, claims kept.

The hand-written notes (DKA, tension pneumothorax, pneumococcal meningitis, anaphylaxis, cystitis) are the
kind of note on which the lexicon once proposed harmful "corrections" (glipizide for an insulin infusion,
paracentesis for needle decompression, Salmonella for S. pneumoniae).
"""
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import spacy

from medcorr.claims import rank_claims
from medcorr.detector import NotePrediction, default_model_dir
from medcorr.evidence import DETECTOR_AUC_FLOOR, DetectorHead, Judgement, combine
from medcorr.fhir import verdict_to_bundle
from medcorr.finding import ErrorType, Evidence, Finding, Role, SourceKind, SpanBasis, Status, Verdict
from medcorr.medec.run import sourced_correction

NOTES = Path(__file__).parent / "fixtures" / "notes"
HAND_WRITTEN = ["dka.txt", "tension_pneumothorax.txt", "meningitis.txt", "anaphylaxis.txt", "uti_drug.txt"]


def model_with_validation(tmp_path: Path, auc: float | None, threshold: float | None = None) -> Path:
    """A copy of the shipped model directory (big files linked) whose metadata records ``auc``."""
    source, target = default_model_dir(), tmp_path / "model"
    target.mkdir()
    for path in source.iterdir():
        if path.name != "medcorr_model.json":
            (target / path.name).symlink_to(path)
    meta = json.loads((source / "medcorr_model.json").read_text(encoding="utf-8"))
    meta.pop("validation", None)
    if auc is not None:
        meta["validation"] = {"verdict_auc": auc, "method": "test record"}
    if threshold is not None:
        meta["threshold"] = threshold
    (target / "medcorr_model.json").write_text(json.dumps(meta), encoding="utf-8")
    return target


def pipeline(**config):
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config=config)
    return nlp


@pytest.fixture(scope="module")
def default_nlp():
    return pipeline()


@pytest.fixture(scope="module")
def note():
    return (NOTES / "dka.txt").read_text(encoding="utf-8")


def test_the_shipped_model_records_an_auc_below_the_floor_and_never_flags(default_nlp):
    head = default_nlp.get_pipe("medcorr").head
    assert head.auc is not None and head.auc < DETECTOR_AUC_FLOOR and not head.trusted
    for name in HAND_WRITTEN:
        verdict = default_nlp((NOTES / name).read_text(encoding="utf-8"))._.medcorr
        assert verdict.status is Status.CLAIMS_ONLY and verdict.flag is None and verdict.source is None
        assert not verdict.findings and len(verdict.claims) == 3


@pytest.mark.parametrize("auc", [None, 0.5, DETECTOR_AUC_FLOOR - 0.01])
def test_a_model_below_the_floor_or_unmeasured_never_flags(tmp_path, note, auc):
    # threshold 0 in the metadata: the head would flag every note if it were trusted
    nlp = pipeline(model_path=str(model_with_validation(tmp_path, auc, threshold=0.0)))
    verdict = nlp(note)._.medcorr
    assert verdict.flag is None and verdict.status is Status.CLAIMS_ONLY and not verdict.findings


def test_a_model_above_the_floor_flags_with_its_evidence_and_no_warning(tmp_path, note):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nlp = pipeline(model_path=str(model_with_validation(tmp_path, 0.83, threshold=0.0)))
    verdict = nlp(note)._.medcorr
    assert verdict.flag is True and verdict.status is Status.CHECKED
    assert verdict.source.kind is SourceKind.DETECTOR and "0.830" in verdict.source.measured
    [finding] = verdict.findings
    assert finding.role is Role.ERROR and finding.evidence == [verdict.source]
    assert (finding.start, finding.end) == (verdict.claims[0].start, verdict.claims[0].end)
    assert finding.correction is None and finding.correction_source is None


def test_a_model_above_the_floor_also_clears_notes(tmp_path, note):
    nlp = pipeline(model_path=str(model_with_validation(tmp_path, 0.9, threshold=1.0)))
    verdict = nlp(note)._.medcorr
    assert verdict.flag is False and verdict.status is Status.CHECKED and verdict.source is not None
    assert not verdict.findings and verdict.claims


def test_the_head_warns_only_when_forced_below_the_floor():
    with pytest.warns(UserWarning, match="never measured"):
        DetectorHead({"version": "x"}, threshold=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DetectorHead({"version": "x", "validation": {"verdict_auc": 0.8}}, threshold=0.5)


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_hand_written_notes_get_no_correction_anywhere(default_nlp, name):
    text = (NOTES / name).read_text(encoding="utf-8")
    verdict = default_nlp(text)._.medcorr
    for finding in (*verdict.claims, *verdict.findings):
        assert finding.correction is None and finding.corrected_sentence is None
    bundle = verdict_to_bundle(verdict, "DocumentReference/1/_history/1")
    assert "entry" not in bundle
    assert sourced_correction(verdict) is None
    # the lexicon alternatives a reviewer may see appear nowhere in the FHIR output
    serialised = json.dumps(bundle)
    assert not any(alternative in serialised for claim in verdict.claims for alternative in claim.alternatives)


def test_the_former_harmful_proposals_are_at_most_unranked_alternatives(default_nlp):
    harmful = {"dka.txt": "glipizide", "tension_pneumothorax.txt": "paracentesis",
               "meningitis.txt": "Salmonella enterica"}
    for name, proposal in harmful.items():
        verdict = default_nlp((NOTES / name).read_text(encoding="utf-8"))._.medcorr
        as_correction = [f for f in (*verdict.claims, *verdict.findings)
                         if proposal in ((f.correction or "") + (f.corrected_sentence or ""))]
        assert not as_correction
        for claim in verdict.claims:
            assert claim.alternatives == sorted(claim.alternatives, key=str.lower)  # shown unranked


def test_drugs_are_labelled_pharmacotherapy(default_nlp):
    drugs = {"anaphylaxis.txt": "epinephrine", "uti_drug.txt": "nitrofurantoin", "clean_uti.txt": "nitrofurantoin"}
    for name, drug in drugs.items():
        verdict = default_nlp((NOTES / name).read_text(encoding="utf-8"))._.medcorr
        [claim] = [c for c in verdict.claims if c.text.lower() == drug]
        assert claim.type is ErrorType.PHARMACOTHERAPY


class StubCandidate:
    def __init__(self, start, end, kind):
        self.start_char, self.end_char, self.kind = start, end, kind


def test_a_drug_claim_is_pharmacotherapy_whatever_the_type_head_prefers():
    nlp = spacy.blank("en")
    text = "She has cystitis. She is started on nitrofurantoin."
    doc = nlp(text)
    spans = [(0, 17), (18, len(text))]
    start = text.index("nitrofurantoin")
    types = np.zeros((2, 5))
    types[:, list(ErrorType).index(ErrorType.MANAGEMENT)] = 10.0  # the head prefers MANAGEMENT
    prediction = NotePrediction(location=np.array([0.2, 0.8]), error=np.array([0.1, 0.1]), types=types,
                                token_offsets=np.array([[start, start + 14]]), token_probs=np.array([0.9]))
    matcher = lambda span: [StubCandidate(start, start + 14, "drug"), StubCandidate(8, 16, "diagnosis")]
    claims = rank_claims(doc, spans, prediction, matcher, max_claims=2)
    assert [(c.text, c.type, c.rank) for c in claims] == [("nitrofurantoin", ErrorType.PHARMACOTHERAPY, 0),
                                                         ("cystitis", ErrorType.DIAGNOSIS, 1)]


def test_each_claim_says_how_its_span_was_chosen_and_a_whole_sentence_gets_no_alternatives():
    nlp = spacy.blank("en")
    text = "She has cystitis. He was seen by the team today. Plan for pneumonia was discussed."
    doc = nlp(text)
    spans = [(0, 17), (18, 48), (49, len(text))]
    words = [(m.start(), m.end()) for m in re.finditer(r"\w+", text) if m.start() >= 18]
    offsets = np.array(words)
    # sentence 2: one peak ("team"); sentence 3: flat, every word in the run
    probs = np.array([0.9 if text[a:b] == "team" else 0.1 if a < 48 else 0.5 for a, b in words])
    prediction = NotePrediction(location=np.array([0.5, 0.3, 0.2]), error=np.zeros(3), types=np.zeros((3, 5)),
                                token_offsets=offsets, token_probs=probs)
    matcher = lambda span: [StubCandidate(8, 16, "diagnosis")]  # it misses "pneumonia" in sentence 3
    claims = rank_claims(doc, spans, prediction, matcher, max_claims=3)
    assert [(c.text, c.basis) for c in claims] == [("cystitis", SpanBasis.TERM), ("team", SpanBasis.TOKENS),
                                                  ("Plan for pneumonia was discussed.", SpanBasis.SENTENCE)]
    assert all(Finding.from_dict(c.to_dict()) == c for c in claims)

    component = pipeline().get_pipe("medcorr")
    component._add_alternatives([doc], [spans], [claims])
    assert claims[0].alternatives and not claims[2].alternatives  # a lexicon term's siblings; a sentence none


@pytest.mark.parametrize("text, status", [
    ("", Status.EMPTY),
    (" \n\t ", Status.EMPTY),
    ("Le patient, âgé de 67 ans, est admis pour une dyspnée et de la fièvre. La radiographie montre une opacité "
     "du lobe inférieur droit. Diagnostic : pneumonie communautaire, traitée par amoxicilline.", Status.NOT_ENGLISH),
    ("Paciente de 30 años con dolor abdominal en fosa ilíaca derecha, fiebre y leucocitosis. Se diagnostica "
     "apendicitis aguda y se programa apendicectomía laparoscópica.", Status.NOT_ENGLISH),
])
def test_notes_not_analysed_get_a_status_and_no_claims_or_score(default_nlp, text, status):
    verdict = default_nlp(text)._.medcorr
    assert verdict.status is status and verdict.status_reason
    assert verdict.flag is None and verdict.score is None and not verdict.claims and not verdict.findings


def test_terse_english_is_not_mistaken_for_another_language(default_nlp):
    terse = "Pt c/o SOB x3d. Hx HTN, DM2. Exam: bibasilar crackles. Plan: IV lasix, BMP, trop q6h."
    assert default_nlp(terse)._.medcorr.status is Status.CLAIMS_ONLY


def test_a_note_over_the_budget_is_too_long(note):
    nlp = pipeline(max_note_chars=200)
    verdict = nlp(note)._.medcorr
    assert verdict.status is Status.TOO_LONG and "200" in verdict.status_reason and not verdict.claims


def claim(start=10, end=21, sentence=1):
    return Finding(start, end, "amoxicillin", ErrorType.PHARMACOTHERAPY, 0.9, sentence)


def test_an_unverified_claim_never_becomes_a_detected_issue_or_a_medec_correction():
    # even a verdict wrongly marked flagged with an unsourced claim in its findings emits no DetectedIssue
    sloppy = Verdict(status=Status.CHECKED, flag=True, score=0.9, error_sentence=1,
                     findings=[Finding(10, 21, "amoxicillin", ErrorType.PHARMACOTHERAPY, 0.9, 1,
                                       corrected_sentence="Started on ceftriaxone.")])
    assert "entry" not in verdict_to_bundle(sloppy, "DocumentReference/1/_history/1")
    assert sourced_correction(sloppy) is None


def test_fhir_and_medec_take_the_correction_from_the_same_sourced_finding():
    evidence = Evidence(SourceKind.VERIFIER, "medcorr.ChatVerifier.v1 test@127.0.0.1", reason="wrong drug",
                        confidence=0.8)
    error = Finding(10, 21, "amoxicillin", ErrorType.PHARMACOTHERAPY, 0.8, 1, role=Role.ERROR,
                    correction="ceftriaxone", corrected_sentence="Started on ceftriaxone.",
                    correction_source=evidence.name, evidence=[evidence])
    verdict = Verdict(status=Status.CHECKED, flag=True, score=0.8, error_sentence=1, source=evidence,
                      claims=[claim()], findings=[error])
    [entry] = verdict_to_bundle(verdict, "DocumentReference/1/_history/1")["entry"]
    issue = entry["resource"]
    assert issue["severity"] == "moderate"
    assert issue["detail"].startswith("Started on ceftriaxone.") and evidence.name in issue["detail"]
    assert sourced_correction(verdict) == "Started on ceftriaxone."


def test_combine_prefers_a_proven_conflict_and_reports_failures():
    check = Evidence(SourceKind.CHECK, "check.allergy_conflict", confidence=1.0)
    verifier = Evidence(SourceKind.VERIFIER, "verifier", confidence=0.1)
    failed = Evidence(SourceKind.VERIFIER, "verifier", reason="timed out")
    error = Finding(0, 4, "drug", ErrorType.PHARMACOTHERAPY, 1.0, 2, role=Role.ERROR, evidence=[check])
    decision = combine([Judgement(verifier, False, 0.1), Judgement(check, True, 1.0, [error])], True, "x")
    assert decision.flag is True and decision.source is check and decision.error_sentence == 2
    cleared = combine([Judgement(verifier, False, 0.1)], True, "x")
    assert cleared.flag is False and cleared.status is Status.CHECKED
    detector = Evidence(SourceKind.DETECTOR, "head", confidence=0.2)
    fallback = combine([Judgement(failed, None), Judgement(detector, False, 0.2)], True, "x")
    assert fallback.flag is False and fallback.source is detector and "verifier failed: timed out" in fallback.reason
    unverified = combine([Judgement(failed, None)], True, "x")
    assert unverified.flag is None and unverified.status is Status.UNVERIFIED and "timed out" in unverified.reason
    assert combine([], True, "why").status is Status.CLAIMS_ONLY
    assert combine([], False, "why").status is Status.NO_CLAIMS


def test_verdict_json_round_trip_keeps_claims_evidence_and_unknown_flag():
    evidence = Evidence(SourceKind.CHECK, "check.x", reason="r", confidence=1.0, measured="m", spans=[(1, 2), (5, 9)])
    error = Finding(10, 21, "amoxicillin", ErrorType.PHARMACOTHERAPY, 1.0, 1, role=Role.ERROR, evidence=[evidence],
                    correction="c", corrected_sentence="s", correction_source="check.x", alternatives=["a", "b"])
    for verdict in (Verdict(status=Status.CLAIMS_ONLY, claims=[claim()]),
                    Verdict(status=Status.CHECKED, flag=True, score=1.0, error_sentence=1, source=evidence,
                            claims=[claim()], findings=[error])):
        assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


MEDEC = Path(__file__).resolve().parents[2] / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"


@pytest.mark.medec
@pytest.mark.skipif(not MEDEC.is_file(), reason=f"needs {MEDEC}")
def test_on_the_shared_medec_notes_the_default_writes_no_detector_flag_and_no_correction(default_nlp):
    from medcorr.medec.io import read_medec
    from medcorr.medec.run import run_medec

    records = read_medec(MEDEC)
    docs = [default_nlp.make_doc(r.text) for r in records]
    verdicts = [doc._.medcorr for doc in default_nlp.pipe(docs, batch_size=32)]
    assert all(v.source is None or v.source.kind is not SourceKind.DETECTOR for v in verdicts)
    assert all(len(v.claims) == 3 for v in verdicts)
    assert not any(f.correction or f.corrected_sentence for v in verdicts for f in (*v.claims, *v.findings))
    lines = run_medec(default_nlp, records)
    flagged = [line for line in lines if line.error_flag]
    # only an evidence check may flag a note here, and a check writes the original sentence (no fix defined)
    assert all(v.source.kind is SourceKind.CHECK for v in verdicts if v.flag)
    assert len(flagged) == sum(bool(v.flag) for v in verdicts) <= len(records) // 100
