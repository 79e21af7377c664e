"""medcorr's output profile (medcorr.fhir_profile) against the full fhir.resources classes.

The profile replaces class validation of every output Bundle on the hot path, so these tests check the
property that makes that safe: what the profile accepts, the classes accept (on many generated verdicts,
R4B and R5), and the broken values the classes reject, the profile rejects too.
"""
from __future__ import annotations

import copy
import random

import pytest
from pydantic import ValidationError

from medcorr import fhir
from medcorr.fhir_profile import OutputProfileError, check_output_bundle
from medcorr.finding import ErrorType, Evidence, Finding, Role, SourceKind, Status, Verdict

TEXTS = ["amoxicillin", "influenza A", "Streptococcus pneumoniae", "β-blocker", "line one\nline two", " padded ",
         "dose 5 mg/kg\t(q8h)", "naïve café", "x"]


def random_evidence(rng: random.Random) -> Evidence:
    return Evidence(kind=rng.choice(list(SourceKind)), name=rng.choice(["check.allergy_conflict", "v @ host", "x"]),
                    reason=rng.choice(["", "reason\nover lines", "r"]), confidence=rng.choice([None, rng.random()]))


def random_verdict(rng: random.Random) -> Verdict:
    findings = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        start = rng.randrange(0, 5000)
        findings.append(Finding(
            start=start, end=start + rng.randrange(1, 80), text=rng.choice(TEXTS + [""]),
            type=rng.choice(list(ErrorType)), score=rng.choice([0.0, 1.0, 1e-9, rng.random()]),
            sentence=rng.randrange(0, 60), correction=rng.choice([None, "", "oseltamivir", "drug A\nB"]),
            corrected_sentence=rng.choice([None, "", "The patient was given oseltamivir."]),
            role=rng.choice([Role.ERROR, Role.ERROR, Role.CLAIM]),
            correction_source=rng.choice([None, "check.x", "verifier @ host"]),
            evidence=[random_evidence(rng) for _ in range(rng.choice([0, 1, 1, 2]))],
        ))
    flag = rng.choice([True, True, False, None])
    return Verdict(status=rng.choice(list(Status)), flag=flag, score=None if flag is None else rng.random(),
                   error_sentence=rng.randrange(-1, 10), source=None if flag is None else random_evidence(rng),
                   findings=findings)


def random_source(rng: random.Random) -> fhir.SourceRef:
    subject = rng.choice([None, {"reference": "Patient/p-1"}, {"reference": "Group/g-1"}, {"display": "x"}])
    return fhir.SourceRef(
        id=rng.choice([None, "doc-1", "a.b-C9"]), version_id=rng.choice([None, "1", "27"]),
        full_url=rng.choice([None, "urn:uuid:7c1e6a62-5f1d-4b7e-9e43-0d8f7f5b1f2a"]), subject=subject,
    )


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_every_generated_bundle_passes_the_profile_and_the_classes(version):
    rng = random.Random(f"profile-{version}")
    flagged_with_entries = 0
    for index in range(300):
        verdict, source = random_verdict(rng), random_source(rng)
        model_version = rng.choice(["0.1.0", "model 2024.1", ""])
        bundle = fhir.verdict_to_bundle(verdict, source, version, model_version, idempotency_key=f"k{index}")
        fhir.validate_with_classes(bundle, version)  # raises if the profile let an invalid Bundle through
        by_classes = fhir.verdict_to_bundle(
            verdict, source, version, model_version, idempotency_key=f"k{index}", validation="classes"
        )
        assert by_classes == bundle
        flagged_with_entries += bool(bundle.get("entry"))
    assert flagged_with_entries > 60  # the sample exercises DetectedIssues, not only empty Bundles


def flagged_bundle(version: str = "R4") -> dict:
    evidence = Evidence(SourceKind.CHECK, "check.allergy_conflict", confidence=1.0)
    finding = Finding(start=3, end=14, text="SECRET-NOTE-TEXT", type=ErrorType.PHARMACOTHERAPY, score=0.91,
                      sentence=0, correction="oseltamivir", corrected_sentence="Given oseltamivir.", role=Role.ERROR,
                      correction_source=evidence.name, evidence=[evidence])
    verdict = Verdict(status=Status.CHECKED, flag=True, score=0.9, error_sentence=0, source=evidence,
                      findings=[finding])
    source = fhir.SourceRef(id="doc-1", version_id="2", subject={"reference": "Patient/p-1"})
    return fhir.verdict_to_bundle(verdict, source, version, "m1")


def issue(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


def finding_part(bundle: dict, url: str) -> dict:
    return next(part for part in issue(bundle)["extension"][0]["extension"] if part["url"] == url)


def verdict_part(bundle: dict, url: str) -> dict:
    return next(part for part in bundle["meta"]["extension"][0]["extension"] if part["url"] == url)


# Broken values that FHIR itself forbids: both validators must refuse each.
INVALID_FOR_FHIR = {
    "NaN finding score": lambda b: finding_part(b, "score").update(valueDecimal=float("nan")),
    "infinite verdict score": lambda b: verdict_part(b, "score").update(valueDecimal=float("inf")),
    "start beyond 32 bits": lambda b: finding_part(b, "start").update(valueInteger=2**31),
    "empty correction": lambda b: issue(b).update(detail=""),  # (R4 string; R5 markdown allows it, below)
    "empty span text": lambda b: finding_part(b, "text").update(valueString=""),
    "id with a space": lambda b: issue(b).update(id="bad id"),
    "unknown key on a DetectedIssue": lambda b: issue(b).update(colour="red"),
    "two values in a sub-extension": lambda b: finding_part(b, "start").update(valueString="3"),
    "text that is not a string": lambda b: finding_part(b, "text").update(valueString=["SECRET-NOTE-TEXT"]),
    "null in a list": lambda b: issue(b).update(implicated=[None]),
    "bundle type missing": lambda b: b.pop("type"),
}


@pytest.mark.parametrize("version", ["R4", "R5"])
@pytest.mark.parametrize("name", sorted(INVALID_FOR_FHIR))
def test_profile_rejects_what_the_classes_reject(version, name):
    if name == "empty correction" and version == "R5":
        pytest.skip("R5 detail is markdown; see test_profile_is_stricter_than_fhir")
    bundle = flagged_bundle(version)
    check_output_bundle(bundle, version)
    fhir.validate_with_classes(bundle, version)
    broken = copy.deepcopy(bundle)
    INVALID_FOR_FHIR[name](broken)
    with pytest.raises(ValidationError):
        fhir.validate_with_classes(broken, version)
    with pytest.raises(OutputProfileError) as caught:
        check_output_bundle(broken, version)
    assert "SECRET" not in str(caught.value)  # field paths and rules only, never note text
    assert "entry" in str(caught.value) or name.startswith(("infinite", "bundle"))


# Valid for the classes, but not what medcorr writes: the profile is stricter. (versions where the classes accept)
VALID_BUT_NOT_MEDCORR = {
    "another status": (lambda b: issue(b).update(status="final"), ("R4", "R5")),
    "an extra FHIR element": (lambda b: b.update(language="en"), ("R4", "R5")),
    "an unknown sub-extension": (lambda b: issue(b)["extension"][0]["extension"].append(
        {"url": "colour", "valueString": "red"}), ("R4", "R5")),
    "another code system": (lambda b: issue(b)["code"]["coding"][0].update(system="http://example.org/cs"),
                            ("R4", "R5")),
    # fhir.resources does not check required bindings
    "severity outside the value set": (lambda b: issue(b).update(severity="severe"), ("R4", "R5")),
    # R5 DetectedIssue.detail is markdown, which fhir_core lets be empty
    "empty correction": (lambda b: issue(b).update(detail=""), ("R5",)),
}


@pytest.mark.parametrize("name", sorted(VALID_BUT_NOT_MEDCORR))
def test_profile_is_stricter_than_fhir(name):
    mutate, versions = VALID_BUT_NOT_MEDCORR[name]
    for version in versions:
        bundle = flagged_bundle(version)
        mutate(bundle)
        fhir.validate_with_classes(bundle, version)
        with pytest.raises(OutputProfileError):
            check_output_bundle(bundle, version)


def test_profile_follows_the_fhir_version():
    r4 = flagged_bundle("R4")
    with pytest.raises(OutputProfileError, match="patient"):
        check_output_bundle(r4, "R5")  # R5 DetectedIssue has subject, not patient
    check_output_bundle(flagged_bundle("R5"), "R5")


def test_verdict_to_bundle_refuses_an_invalid_score_and_unknown_validation():
    verdict = Verdict(status=Status.CHECKED, flag=True, score=float("nan"), error_sentence=0, findings=[])
    for validation in ("profile", "classes"):
        with pytest.raises(ValueError):
            fhir.verdict_to_bundle(verdict, "DocumentReference/x", "R4", "m", validation=validation)
    with pytest.raises(ValueError, match="validation"):
        fhir.verdict_to_bundle(Verdict.empty(), "DocumentReference/x", "R4", "m", validation="none")


def test_the_profile_and_the_mapping_do_not_import_each_other_in_a_cycle():
    import ast
    from pathlib import Path

    package = Path(fhir.__file__).parent

    def medcorr_imports(name: str) -> set[str]:
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        return {node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medcorr.")}

    assert "medcorr.fhir" not in medcorr_imports("fhir_profile")
    assert medcorr_imports("fhir_terms") == set()
