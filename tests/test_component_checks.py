"""Evidence checks inside the component: a fired check is an asserted error with both spans as evidence."""
from __future__ import annotations

import pytest
import spacy

from medcorr import fhir
from medcorr.fhir import CHECK_CODE_SYSTEM, iter_issue_findings, verdict_to_bundle
from medcorr.finding import ErrorType, Role, SourceKind, Status

ALLERGIC = ("A 45-year-old woman with a documented penicillin allergy presents with fever and productive cough. "
            "Chest x-ray shows right lower lobe consolidation. She is diagnosed with community-acquired pneumonia. "
            "She is started on amoxicillin.")
NO_ALLERGY = ALLERGIC.replace("a documented penicillin allergy", "no known drug allergies")


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr")
    return nlp


def test_a_fired_check_flags_the_note_with_its_cited_spans(nlp):
    verdict = nlp(ALLERGIC)._.medcorr
    assert verdict.status is Status.CHECKED and verdict.flag is True and verdict.score == 1.0
    assert verdict.source.kind is SourceKind.CHECK and verdict.source.name == "check.allergy_conflict"
    [finding] = verdict.findings
    assert finding.role is Role.ERROR and finding.text == "amoxicillin" and finding.type is ErrorType.PHARMACOTHERAPY
    cited = [ALLERGIC[start:end] for start, end in finding.evidence[0].spans]
    assert cited[0] == "amoxicillin" and "penicillin" in cited[1]
    assert finding.correction is None and finding.correction_source is None  # the check defines no fix here
    assert "recall" in finding.evidence[0].measured


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_the_detected_issue_codes_the_check_kind_and_cites_both_spans(nlp, version):
    verdict = nlp(ALLERGIC)._.medcorr
    bundle = verdict_to_bundle(verdict, "DocumentReference/n-1/_history/2", version, "m", validation="classes")
    [entry] = bundle["entry"]
    issue = entry["resource"]
    assert issue["severity"] == "high"
    assert {"system": CHECK_CODE_SYSTEM, "code": "allergy_conflict", "display": "allergy conflict"} in issue["code"]["coding"]
    parts = issue["extension"][0]["extension"]
    spans = [p["valueString"] for p in parts if p["url"] == "evidenceSpan"]
    assert spans == [f"{s}-{e}" for s, e in verdict.findings[0].evidence[0].spans] and len(spans) == 2
    fhir.validate_with_classes(bundle, version)
    assert next(iter_issue_findings(bundle))["type"] == "PHARMACOTHERAPY"


def test_the_twin_without_the_conflict_is_not_flagged_and_checks_can_be_switched_off(nlp):
    assert nlp(NO_ALLERGY)._.medcorr.flag is None
    off = spacy.blank("en")
    off.add_pipe("medcorr", config={"checks": None})
    verdict = off(ALLERGIC)._.medcorr
    assert verdict.flag is None and verdict.status is Status.CLAIMS_ONLY


def test_a_check_switch_in_the_config_turns_one_kind_off():
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config={"checks": {"@medcorr_checks": "medcorr.EvidenceChecks.v1", "allergy_conflict": False}})
    assert nlp(ALLERGIC)._.medcorr.flag is None
