"""The FHIR mapper (medcorr.fhir): note extraction with typed errors and the DetectedIssue Bundle. No broker."""
from __future__ import annotations

import base64
import json

import pytest

from medcorr import fhir
from medcorr.finding import Evidence, Role, SourceKind, Status, ErrorType, Finding, Verdict

CANARY = "CANARY-7f3a9c-do-not-log"
NOTE = (
    "A 34-year-old woman presents with fever and myalgia for 2 days. Rapid antigen test is positive for "
    f"influenza A. She is started on amoxicillin. {CANARY}"
)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else data).decode("ascii")


def docref(*attachments: dict, rid: str | None = "doc-1", version: str | None = "3", **extra) -> dict:
    resource = {"resourceType": "DocumentReference", "status": "current",
                "content": [{"attachment": a} for a in attachments]}
    if rid:
        resource["id"] = rid
    if version:
        resource["meta"] = {"versionId": version}
    resource.update(extra)
    return resource


def plain(text: str = NOTE, content_type: str | None = "text/plain") -> dict:
    attachment = {"data": b64(text)}
    if content_type:
        attachment["contentType"] = content_type
    return attachment


def encode(resource: dict) -> bytes:
    return json.dumps(resource).encode("utf-8")


CHECK = Evidence(SourceKind.CHECK, "check.allergy_conflict", reason="penicillin allergy recorded", confidence=1.0)
VERIFIER = Evidence(SourceKind.VERIFIER, "medcorr.ChatVerifier.v1 m@127.0.0.1", confidence=0.62)
FINDING = Finding(start=117, end=128, text="amoxicillin", type=ErrorType.PHARMACOTHERAPY, score=0.91, sentence=2,
                  role=Role.ERROR, correction="oseltamivir", corrected_sentence="She is started on oseltamivir.",
                  correction_source="check.allergy_conflict", evidence=[CHECK])
FLAGGED = Verdict(status=Status.CHECKED, flag=True, score=0.88, error_sentence=2, source=CHECK, findings=[
    FINDING,
    Finding(start=60, end=71, text="influenza A", type=ErrorType.DIAGNOSIS, score=0.62, sentence=1,
            role=Role.ERROR, evidence=[VERIFIER]),
])


# ----------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_plain_text_note_is_read_with_source_reference(version):
    notes = fhir.read_notes(encode(docref(plain(), subject={"reference": "Patient/p-9"})), version)
    assert len(notes) == 1
    note = notes[0]
    assert note.error is None and note.text == NOTE
    assert (note.entry, note.entries) == (None, None)
    assert note.source.reference == "DocumentReference/doc-1/_history/3"
    assert note.source.subject == {"reference": "Patient/p-9"}


def test_text_plain_preferred_over_html_and_html_used_when_alone():
    html = "<html><head><style>p {color: red}</style><script>var x = 1;</script></head><body>" \
           "<h1>Progress&nbsp;note</h1><p>Fever &amp; cough.</p><p>Started on<br/>amoxicillin.</p></body></html>"
    both = docref({"contentType": "text/html", "data": b64(html)}, plain("Plain version."))
    assert fhir.document_text(both) == "Plain version."
    only_html = fhir.document_text(docref({"contentType": "text/html; charset=utf-8", "data": b64(html)}))
    assert only_html == "Progress note\n\nFever & cough.\n\nStarted on\namoxicillin."
    assert "color" not in only_html and "var x" not in only_html


def test_charset_from_content_type_and_utf8_default():
    latin = docref({"contentType": "text/plain; charset=ISO-8859-1", "data": b64("Caf\u00e9 n\u00e4he".encode("latin-1"))})
    assert fhir.document_text(latin) == "Caf\u00e9 n\u00e4he"
    no_type = docref(plain("Caf\u00e9 \u2014 note", content_type=None))
    assert fhir.document_text(no_type) == "Caf\u00e9 \u2014 note"


def test_document_text_accepts_a_fhir_resources_model():
    from fhir.resources.R4B.documentreference import DocumentReference

    model = DocumentReference.model_validate(docref(plain()))
    assert fhir.document_text(model) == NOTE


def test_size_limit_is_inclusive_and_configurable():
    text = "x" * 100
    assert fhir.document_text(docref(plain(text)), max_note_bytes=100) == text
    with pytest.raises(fhir.NoteTooLargeError) as error:
        fhir.document_text(docref(plain(text + "y")), max_note_bytes=100)
    assert error.value.code == "NOTE_TOO_LARGE" and "limit is 100" in str(error.value)
    big = "word " * (fhir.DEFAULT_MAX_NOTE_BYTES // 5 + 10)
    with pytest.raises(fhir.NoteTooLargeError):
        fhir.document_text(docref(plain(big)))


BAD_MESSAGES = {
    "TOMBSTONE": None,
    "NOT_UTF8": b'{"resourceType": "DocumentReference", "id": "\xff\xfe"}',
    "NOT_JSON": b"DocumentReference: " + CANARY.encode(),
    "NOT_FHIR": json.dumps([{"resourceType": "DocumentReference"}]).encode(),
    "WRONG_RESOURCE_TYPE": encode({"resourceType": "Observation", "id": "o1", "status": "final",
                                   "code": {"text": CANARY}}),
    "EMPTY_BUNDLE": encode({"resourceType": "Bundle", "type": "collection", "entry": []}),
}


@pytest.mark.parametrize("code", sorted(BAD_MESSAGES))
def test_bad_messages_raise_typed_errors_without_note_text(code):
    with pytest.raises(fhir.BadInputError) as error:
        fhir.read_notes(BAD_MESSAGES[code])
    assert error.value.code == code
    assert CANARY not in str(error.value)


def test_json_without_resource_type_is_not_fhir():
    with pytest.raises(fhir.NotFhirError):
        fhir.read_notes(json.dumps({"id": "x", "text": CANARY}).encode())


BAD_DOCUMENTS = {
    "NO_CONTENT": docref(),
    "URL_ONLY": docref({"contentType": "text/plain", "url": "https://ehr.example/Binary/1"}),
    "UNSUPPORTED_CONTENT_TYPE": docref({"contentType": "application/pdf", "data": b64(b"%PDF-1.7 " + CANARY.encode())},
                                       {"contentType": "image/png", "data": b64(b"\x89PNG....")}),
    "INVALID_BASE64": docref({"contentType": "text/plain", "data": "!!not*base64" + CANARY}),
    "EMPTY_NOTE": docref(plain(" \n\t  ")),
    "NOTE_TOO_LARGE": docref(plain(NOTE * 40)),
    "UNSUPPORTED_CHARSET": docref({"contentType": "text/plain; charset=x-klingon", "data": b64(NOTE)}),
    "TEXT_DECODE_ERROR": docref({"contentType": "text/plain", "data": b64(("Caf\u00e9 " + CANARY).encode("latin-1"))}),
    "INVALID_FHIR": {"resourceType": "DocumentReference", "id": "d", "content": [{"attachment": plain()}]},
}


@pytest.mark.parametrize("code", sorted(BAD_DOCUMENTS))
@pytest.mark.parametrize("version", ["R4", "R5"])
def test_bad_documents_become_note_errors_with_codes(code, version):
    notes = fhir.read_notes(encode(BAD_DOCUMENTS[code]), version, max_note_bytes=2048)
    assert len(notes) == 1
    note = notes[0]
    assert note.text is None and isinstance(note.error, fhir.BadInputError)
    assert note.error.code == code
    assert CANARY not in str(note.error)
    assert code in fhir.ERROR_CODES


def test_url_only_message_says_fetching_is_not_supported():
    with pytest.raises(fhir.UrlOnlyError, match="not supported"):
        fhir.document_text(BAD_DOCUMENTS["URL_ONLY"])


def test_invalid_fhir_names_the_field_not_the_value():
    with pytest.raises(fhir.InvalidFhirError) as error:
        fhir.validate_document(BAD_DOCUMENTS["INVALID_FHIR"], "R4")
    assert "status" in str(error.value)
    r5_only = docref(plain(), context=[{"reference": "Encounter/e1"}])
    fhir.validate_document(r5_only, "R5")
    with pytest.raises(fhir.InvalidFhirError) as error:
        fhir.validate_document(r5_only, "R4")
    assert "context" in str(error.value)


def test_bundle_gives_one_item_per_entry_and_bad_entries_stay_local():
    bundle = {
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": docref(plain("First note."), rid="a", version="1")},
            {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Patient", "id": "p"}},
            {"fullUrl": "urn:uuid:3", "resource": docref({"contentType": "application/pdf", "data": b64(b"%PDF")})},
            {"fullUrl": "urn:uuid:4"},
            {"fullUrl": "urn:uuid:5", "resource": docref(plain("Fifth note."), rid=None, version=None)},
        ],
    }
    notes = fhir.read_notes(encode(bundle))
    assert [n.entry for n in notes] == [0, 1, 2, 3, 4]
    assert {n.entries for n in notes} == {5}
    assert [n.error.code if n.error else None for n in notes] == [
        None, "WRONG_RESOURCE_TYPE", "UNSUPPORTED_CONTENT_TYPE", "NOT_FHIR", None]
    assert notes[0].text == "First note." and notes[4].text == "Fifth note."
    assert notes[4].source.reference == "urn:uuid:5"


# ----------------------------------------------------------------------------- output


def bundle_class(version: str):
    if version == "R4":
        from fhir.resources.R4B.bundle import Bundle
    else:
        from fhir.resources.bundle import Bundle
    return Bundle


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_flagged_verdict_gives_one_detected_issue_per_finding(version):
    source = fhir.SourceRef(id="doc-1", version_id="3", subject={"reference": "Patient/p-9"})
    bundle = fhir.verdict_to_bundle(FLAGGED, source, version, "model-2024.1")
    bundle_class(version).model_validate(bundle)  # valid FHIR of that version
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    issues = [entry["resource"] for entry in bundle["entry"]]
    assert len(issues) == 2
    reference = {"reference": "DocumentReference/doc-1/_history/3"}
    for entry, issue, finding in zip(bundle["entry"], issues, FLAGGED.findings):
        assert entry["fullUrl"] == f"urn:uuid:{issue['id']}"
        assert issue["resourceType"] == "DetectedIssue"
        assert issue["status"] == "preliminary"
        assert issue["code"]["coding"][0]["system"] == fhir.CODE_SYSTEM
        assert issue["code"]["coding"][0]["code"] == finding.type.value
        assert issue["implicated"] == [reference]
        assert issue["evidence"] == [{"detail": [reference]}]
        patient_field = "patient" if version == "R4" else "subject"
        assert issue[patient_field] == {"reference": "Patient/p-9"}
    assert [i["severity"] for i in issues] == ["high", "moderate"]  # a proven conflict, a verifier's judgement
    assert issues[0]["detail"] == "She is started on oseltamivir. (correction from check.allergy_conflict)"
    assert "detail" not in issues[1]  # no proposal, no detail
    read_back = list(fhir.iter_issue_findings(bundle))
    assert read_back[0] == {"type": "PHARMACOTHERAPY", "start": 117, "end": 128, "score": 0.91,
                            "severity": "high", "correction": issues[0]["detail"]}
    assert read_back[1]["start"] == 60 and read_back[1]["end"] == 71
    verdict = fhir.bundle_verdict(bundle)
    assert verdict["flag"] is True and verdict["score"] == 0.88 and verdict["findings"] == 2
    assert verdict["modelVersion"] == "model-2024.1" and verdict["source"] == reference


def _objects(value, path="bundle"):
    """Every dict and list of a JSON tree with its path, and the leaves' types."""
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _objects(item, f"{path}.{key}")
    elif isinstance(value, list):
        yield path, value
        for index, item in enumerate(value):
            yield from _objects(item, f"{path}[{index}]")
    else:
        assert type(value) in (str, int, float, bool), (path, type(value))


def test_bundle_is_plain_json_without_shared_parts():
    import numpy as np

    source = fhir.SourceRef(id="doc-1", version_id="3", subject={"reference": "Patient/p-9"})
    finding = Finding(start=np.int64(117), end=np.int64(128), text=np.str_("amoxicillin"),
                      type=ErrorType.PHARMACOTHERAPY, score=np.float32(0.91), sentence=np.int64(3),
                      correction=np.str_("oseltamivir"), corrected_sentence=np.str_("He got oseltamivir."),
                      role=Role.ERROR, correction_source="check.allergy_conflict", evidence=[CHECK])
    verdict = Verdict(status=Status.CHECKED, flag=True, score=np.float32(0.9), error_sentence=3, source=CHECK,
                      findings=[finding, FINDING])
    bundle = fhir.verdict_to_bundle(verdict, source, "R4", "m")
    parts = list(_objects(bundle))  # the leaves are plain str/int/float/bool, not numpy scalars
    assert len({id(part) for _, part in parts}) == len(parts), "a dict or list appears twice in the Bundle"
    assert bundle == json.loads(json.dumps(bundle))


def test_output_classes_follow_the_fhir_version():
    source = fhir.SourceRef(id="doc-1", version_id="3", subject={"reference": "Patient/p-9"})
    r4 = fhir.verdict_to_bundle(FLAGGED, source, "R4", "m")
    with pytest.raises(Exception):
        bundle_class("R5").model_validate(r4)  # R4 DetectedIssue.patient is not R5


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_clean_verdict_gives_empty_bundle_that_says_checked(version):
    claim = Finding(start=117, end=128, text="amoxicillin", type=ErrorType.PHARMACOTHERAPY, score=0.4, sentence=1)
    clean = Verdict(status=Status.CHECKED, flag=False, score=0.12, source=VERIFIER, claims=[claim])
    bundle = fhir.verdict_to_bundle(clean, "DocumentReference/doc-2/_history/1", version, "m1")
    bundle_class(version).model_validate(bundle)
    assert "entry" not in bundle
    verdict = fhir.bundle_verdict(bundle)
    assert verdict["flag"] is False and verdict["score"] == 0.12 and verdict["findings"] == 0
    assert verdict["status"] == "checked" and verdict["judgedBy"] == f"verifier: {VERIFIER.name}"
    assert verdict["claims"] == 1


@pytest.mark.parametrize("version", ["R4", "R5"])
def test_unjudged_verdict_gives_empty_bundle_without_a_flag(version):
    claim = Finding(start=117, end=128, text="amoxicillin", type=ErrorType.PHARMACOTHERAPY, score=0.9, sentence=1)
    unjudged = Verdict(status=Status.CLAIMS_ONLY, status_reason="nothing judged", claims=[claim])
    bundle = fhir.verdict_to_bundle(unjudged, "DocumentReference/doc-2/_history/1", version, "m1")
    bundle_class(version).model_validate(bundle)
    assert "entry" not in bundle
    verdict = fhir.bundle_verdict(bundle)
    assert verdict["status"] == "claims_only" and "flag" not in verdict and "score" not in verdict
    assert verdict["modelVersion"] == "m1"
    assert verdict["source"] == {"reference": "DocumentReference/doc-2/_history/1"}


def test_ids_are_deterministic_per_source_and_model_version():
    source = fhir.SourceRef(id="doc-1", version_id="3")
    first = fhir.verdict_to_bundle(FLAGGED, source, "R4", "m1")
    assert fhir.verdict_to_bundle(FLAGGED, source, "R4", "m1") == first
    other_model = fhir.verdict_to_bundle(FLAGGED, source, "R4", "m2")
    assert other_model["id"] != first["id"]
    other_version = fhir.verdict_to_bundle(FLAGGED, fhir.SourceRef(id="doc-1", version_id="4"), "R4", "m1")
    assert other_version["id"] != first["id"]


def test_source_without_id_uses_display_of_idempotency_key():
    bundle = fhir.verdict_to_bundle(Verdict.empty(), fhir.SourceRef(), "R4", "m", idempotency_key="kafka:notes/1/7")
    assert fhir.bundle_verdict(bundle)["source"] == {"display": "kafka:notes/1/7"}


@pytest.mark.parametrize("kinds,severity", [([SourceKind.CHECK], "high"), ([SourceKind.VERIFIER], "moderate"),
                                            ([SourceKind.DETECTOR], "low"),
                                            ([SourceKind.DETECTOR, SourceKind.CHECK], "high")])
def test_severity_follows_the_asserting_source(kinds, severity):
    finding = Finding(0, 4, "word", ErrorType.DIAGNOSIS, 0.99, 0, role=Role.ERROR,
                      evidence=[Evidence(kind, kind.value) for kind in kinds])
    assert fhir.severity_of(finding) == severity


def test_every_error_type_maps_and_code_system_lists_them():
    for error_type in ErrorType:
        verdict = Verdict(Status.CHECKED, True, 0.9, 0, source=CHECK,
                          findings=[Finding(0, 4, "word", error_type, 0.9, 0, role=Role.ERROR, evidence=[CHECK])])
        bundle = fhir.verdict_to_bundle(verdict, "DocumentReference/x", "R5", "m")
        assert bundle["entry"][0]["resource"]["code"]["coding"][0]["code"] == error_type.value
    for version in ("R4", "R5"):
        code_system = fhir.error_type_code_system(version)
        assert code_system["url"] == fhir.CODE_SYSTEM
        assert [c["code"] for c in code_system["concept"]] == [t.value for t in ErrorType]


def test_unknown_fhir_version_is_refused():
    with pytest.raises(ValueError):
        fhir.verdict_to_bundle(Verdict.empty(), "DocumentReference/x", "STU3", "m")
