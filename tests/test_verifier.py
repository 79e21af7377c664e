"""The verifier stage: prompt and answer parsing, ChatVerifier's HTTP plumbing against scripted servers,
VotingVerifier, and the component using a verifier's judgement as the note's verdict."""
from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import spacy
from confection import Config

from chat_stub import HangingServer, StubServer, answer, checked_sentences, note_sentences
from medcorr.fhir import verdict_to_bundle
from medcorr.finding import ErrorType, Finding, Role, SourceKind, Status
from medcorr.medec.run import sourced_correction
from medcorr.verifiers.base import VerificationRequest
from medcorr.verifiers.chat import ChatVerifier
from medcorr.verifiers.client import EndpointNotAllowed, is_loopback
from medcorr.verifiers.prompt import Answer, build_messages, first_json_object, parse_answer
from medcorr.verifiers.voting import VotingVerifier

SECRET = "Zyxwvutsrq"  # a marker in note text that must never reach a log record
NOTE = ("A 30-year-old man has fever and a productive cough. Chest x-ray shows right lower lobe consolidation. "
        f"He is diagnosed with asthma. He is started on amoxicillin. Patient {SECRET} lives alone.")


def sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    spans, start = [], 0
    for index, char in enumerate(text):
        if char == "." and (index + 1 == len(text) or text[index + 1] == " "):
            spans.append((start, index + 1))
            start = index + 2
    return tuple(spans)


def make_request(text: str = NOTE, claims: tuple[tuple[str, ErrorType], ...] = (
        ("asthma", ErrorType.DIAGNOSIS), ("amoxicillin", ErrorType.PHARMACOTHERAPY))) -> VerificationRequest:
    spans = sentence_spans(text)
    found = []
    for rank, (word, error_type) in enumerate(claims):
        start = text.index(word)
        sentence = next(i for i, (s, e) in enumerate(spans) if s <= start < e)
        found.append(Finding(start, start + len(word), word, error_type, 0.5, sentence, rank=rank))
    return VerificationRequest(text, spans, tuple(found))


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    servers: list[StubServer] = []

    def make(script, delay: float = 0.0) -> StubServer:
        server = StubServer(script, delay)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def verifier(base_url: str, **options: Any) -> ChatVerifier:
    settings: dict[str, Any] = {"model": "stub", "backoff": 0.01, "api_key_env": None, "examples": 0}
    settings.update(options)
    return ChatVerifier(base_url, **settings)


ASTHMA_WRONG = answer(True, 2, "He is diagnosed with community-acquired pneumonia.", "consolidation with fever")


# ----------------------------------------------------------------------------- prompt and parsing


def test_prompt_numbers_the_note_and_names_the_claims_and_their_types():
    request = make_request()
    [system, user] = build_messages(request)
    assert system["role"] == "system" and user["role"] == "user"
    assert "2 He is diagnosed with asthma." in user["content"]
    assert '- sentence 2: diagnosis "asthma"' in user["content"]
    assert '- sentence 3: pharmacotherapy "amoxicillin"' in user["content"]
    assert "Diagnosis:" in user["content"] and "Drug:" in user["content"] and "Organism:" not in user["content"]


@pytest.mark.parametrize("reply, expected", [
    (ASTHMA_WRONG, Answer(True, 2, "He is diagnosed with community-acquired pneumonia.", "consolidation with fever")),
    ('Sure! ```json\n{"error": false, "sentence": -1, "corrected_sentence": "", "rationale": "fits"}\n```',
     Answer(False, -1, "", "fits")),
    ('{"error": true, "sentence": "3", "corrected_sentence": "He is started on  ceftriaxone.", "rationale": 1}',
     Answer(True, 3, "He is started on ceftriaxone.", "")),
])
def test_valid_answers_parse(reply, expected):
    assert parse_answer(reply, make_request()) == expected


@pytest.mark.parametrize("reply, problem", [
    ("I think the diagnosis is wrong.", "no JSON"),
    ('{"error": "yes", "sentence": 2}', "true or false"),
    (answer(True, 1, "Chest x-ray is normal."), "not one of the sentences to check"),
    (answer(True, 2, ""), "missing"),
    (answer(True, 2, "He is diagnosed with asthma."), "original sentence"),
    ('{"error": true, "sentence": 2.5, "corrected_sentence": "x"}', "sentence number"),
])
def test_invalid_answers_are_rejected_with_a_reason(reply, problem):
    rejected = parse_answer(reply, make_request())
    assert isinstance(rejected, str) and problem in rejected


def test_first_json_object_handles_nesting_and_escapes():
    assert first_json_object('x {"a": "}\\"{", "b": {"c": 1}} y {"d": 2}') == '{"a": "}\\"{", "b": {"c": 1}}'


# ----------------------------------------------------------------------------- ChatVerifier over HTTP


def test_an_asserted_error_carries_the_verifier_as_source_and_its_corrected_sentence(stub):
    server = stub(lambda body, i: (200, ASTHMA_WRONG))
    chat = verifier(server.base_url, discrimination="MEDEC-MS flag accuracy 0.7 (test)")
    [judgement] = chat([make_request()])
    assert judgement.error is True and judgement.score == 1.0
    [finding] = judgement.findings
    assert finding.role is Role.ERROR and finding.text == "asthma" and finding.sentence == 2
    assert finding.corrected_sentence == "He is diagnosed with community-acquired pneumonia."
    assert finding.correction_source == chat.name == f"medcorr.ChatVerifier.v1 stub@{server.base_url.split('/')[2]}"
    assert finding.evidence[0].kind is SourceKind.VERIFIER and finding.evidence[0].reason == "consolidation with fever"
    assert finding.evidence[0].measured == "MEDEC-MS flag accuracy 0.7 (test)"
    body = server.bodies[0]
    assert body["model"] == "stub" and body["temperature"] == 0.0 and body["seed"] == 0 and not body["stream"]
    assert server.paths == ["/v1/chat/completions"]


def test_no_error_answer_clears_the_note(stub):
    server = stub(lambda body, i: (200, answer(False, rationale="consistent")))
    [judgement] = verifier(server.base_url)([make_request()])
    assert judgement.error is False and judgement.score == 0.0 and not judgement.findings


def test_a_rejected_answer_is_asked_again_once_with_the_reason(stub):
    replies = [answer(True, 0, "A 30-year-old woman."), ASTHMA_WRONG]
    server = stub(lambda body, i: (200, replies[i]))
    [judgement] = verifier(server.base_url)([make_request()])
    assert judgement.error is True and server.calls == 2
    retry = server.bodies[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": replies[0]}
    assert "not one of the sentences to check" in retry[-1]["content"]


def test_an_answer_rejected_twice_leaves_the_note_unverified(stub):
    server = stub(lambda body, i: (200, "The note looks fine to me."))
    chat = verifier(server.base_url)
    [judgement] = chat([make_request()])
    assert judgement.error is None and "rejected twice" in judgement.evidence.reason
    assert chat.stats()["failures"] == 1 and server.calls == 2


def test_429_with_retry_after_is_honoured(stub):
    def script(body, index):
        return (429, "slow down", {"Retry-After": "0.3"}) if index == 0 else (200, ASTHMA_WRONG)

    server = stub(script)
    started = time.monotonic()
    [judgement] = verifier(server.base_url, backoff=0.0)([make_request()])
    assert judgement.error is True and server.calls == 2 and time.monotonic() - started >= 0.3


def test_server_errors_are_retried_and_client_errors_are_not(stub):
    flaky = stub(lambda body, i: (503, "busy") if i < 2 else (200, ASTHMA_WRONG))
    assert verifier(flaky.base_url, max_retries=2)([make_request()])[0].error is True and flaky.calls == 3
    denied = stub(lambda body, i: (401, "no key"))
    [judgement] = verifier(denied.base_url, max_retries=3)([make_request()])
    assert judgement.error is None and "HTTP 401" in judgement.evidence.reason and denied.calls == 1


def test_a_hanging_server_times_out_within_budget_and_logs_no_note_text(caplog):
    hanging = HangingServer()
    try:
        chat = verifier(f"http://127.0.0.1:{hanging.port}/v1", timeout=0.5, max_retries=1, backoff=0.1)
        started = time.monotonic()
        with caplog.at_level(logging.DEBUG, logger="medcorr"):
            [judgement] = chat([make_request()])
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    assert judgement.error is None and "timeout" in judgement.evidence.reason.lower()
    assert 1.0 <= elapsed < 4.0 and hanging.accepted == 2
    assert any(r.levelno >= logging.WARNING for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_an_unreachable_endpoint_leaves_the_note_unverified():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chat = verifier(f"http://127.0.0.1:{port}/v1", max_retries=1)
    [judgement] = chat([make_request()])
    assert judgement.error is None and chat.stats()["calls"] == 2


def test_a_remote_endpoint_must_be_allowed_explicitly():
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://localhost/v1")
    assert is_loopback("http://[::1]:8000/v1") and not is_loopback("https://llm.hospital.example/v1")
    with pytest.raises(EndpointNotAllowed, match="allow_remote"):
        ChatVerifier("https://llm.hospital.example/v1", "m")
    assert ChatVerifier("https://llm.hospital.example/v1", "m", allow_remote=True).client.host == "llm.hospital.example"


def test_the_disk_cache_answers_a_rerun_without_calls_and_failures_are_not_cached(stub, tmp_path):
    server = stub(lambda body, i: (200, ASTHMA_WRONG))
    first = verifier(server.base_url, cache_dir=str(tmp_path))
    expected = first([make_request()])
    second = verifier(server.base_url, cache_dir=str(tmp_path))
    assert second([make_request()]) == expected and server.calls == 1
    assert second.stats()["cache_hits"] == 1 and second.stats()["calls"] == 0
    down = stub(lambda body, i: (500, "down"))
    failing = verifier(down.base_url, cache_dir=str(tmp_path / "other"), max_retries=0)
    failing([make_request()])
    failing([make_request()])
    assert down.calls == 2


def test_all_notes_of_a_batch_are_in_flight_together_up_to_the_limit(stub):
    server = stub(lambda body, i: (200, answer(False)), delay=0.2)
    chat = verifier(server.base_url, max_concurrency=4)
    started = time.monotonic()
    judgements = chat([make_request() for _ in range(8)])
    elapsed = time.monotonic() - started
    assert [j.error for j in judgements] == [False] * 8
    assert server.max_in_flight == 4 and elapsed < 0.2 * 8 / 2  # serial would take 1.6 s


def test_results_keep_request_order_under_concurrency(stub):
    def script(body, index):
        sentences = note_sentences(body)
        drug = sentences[3].split()[-1].rstrip(".")
        return 200, answer(True, 3, f"He is started on not-{drug}.") if drug.endswith("1") else answer(False)

    notes = [NOTE.replace("amoxicillin", f"drug{n}") for n in range(12)]
    server = stub(script, delay=0.01)
    requests = [make_request(text, (("asthma", ErrorType.DIAGNOSIS), (f"drug{n}", ErrorType.PHARMACOTHERAPY)))
                for n, text in enumerate(notes)]
    judgements = verifier(server.base_url, max_concurrency=4)(requests)
    assert [j.error for j in judgements] == [n in (1, 11) for n in range(12)]


def test_self_consistency_takes_the_majority_and_reports_the_vote_share(stub):
    votes = [ASTHMA_WRONG, answer(False), ASTHMA_WRONG]
    server = stub(lambda body, i: (200, votes[body["seed"]]))
    [judgement] = verifier(server.base_url, samples=3)([make_request()])
    assert judgement.error is True and judgement.score == pytest.approx(2 / 3)
    assert sorted(b["seed"] for b in server.bodies) == [0, 1, 2] and {b["temperature"] for b in server.bodies} == {0.7}


def test_tied_samples_leave_the_note_unverified(stub):
    server = stub(lambda body, i: (200, ASTHMA_WRONG if body["seed"] == 0 else answer(False)))
    [judgement] = verifier(server.base_url, samples=2)([make_request()])
    assert judgement.error is None and "tie" in judgement.evidence.reason


def test_token_usage_and_calls_are_counted(stub):
    server = stub(lambda body, i: (200, ASTHMA_WRONG))
    chat = verifier(server.base_url)
    chat([make_request(), make_request()])
    stats = chat.stats()
    assert stats["calls"] == 2 and stats["prompt_tokens"] > 100 and stats["completion_tokens"] > 5


def test_response_format_options_reach_the_server(stub):
    server = stub(lambda body, i: (200, answer(False)))
    verifier(server.base_url, response_format="json_schema")([make_request()])
    schema = server.bodies[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"][0] == "error" and schema["properties"]["sentence"]["enum"] == [-1, 2, 3]
    verifier(server.base_url, response_format="json_object_schema")([make_request()])
    assert server.bodies[1]["response_format"] == {"type": "json_object", "schema": schema}
    with pytest.raises(ValueError, match="response_format"):
        verifier(server.base_url, response_format="yaml")


# ----------------------------------------------------------------------------- VotingVerifier


class Fixed:
    """A member verifier with fixed answers: 'e2' (error in sentence 2), 'no', 'fail'."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name, self.answers, self.calls = name, answers, 0

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls}

    def __call__(self, requests):
        from medcorr.evidence import Judgement, asserted
        from medcorr.finding import Evidence

        self.calls += len(requests)
        out = []
        for request, kind in zip(requests, self.answers):
            evidence = Evidence(SourceKind.VERIFIER, self.name, reason=kind, confidence=1.0)
            if kind == "fail":
                out.append(Judgement(evidence, None))
            elif kind == "no":
                out.append(Judgement(evidence, False, 0.0))
            else:
                claim = next(c for c in request.claims if c.sentence == int(kind[1:]))
                out.append(Judgement(evidence, True, 1.0, [asserted(claim, evidence, corrected_sentence="fixed.",
                                                                     correction_source=self.name)]))
        return out


def test_voting_takes_a_strict_majority_and_handles_ties_and_failures_explicitly():
    members = {"a": Fixed("a", ["e2", "e2", "fail", "no"]), "b": Fixed("b", ["e2", "no", "fail", "fail"]),
               "c": Fixed("c", ["no", "fail", "e2", "fail"])}
    vote = VotingVerifier(members)
    majority, tie, too_few, one_of_three = vote([make_request()] * 4)
    assert majority.error is True and majority.score == pytest.approx(2 / 3)
    assert majority.findings[0].correction_source == "a" and majority.findings[0].evidence == [majority.evidence]
    assert tie.error is None and "no majority" in tie.evidence.reason
    assert too_few.error is None and "1 of 3 verifiers answered, 2 needed" in too_few.evidence.reason
    assert one_of_three.error is None
    assert vote.stats() == {"calls": 12}  # every member saw every note once
    assert VotingVerifier(members, quorum=1)([make_request()] * 4)[3].error is False


# ----------------------------------------------------------------------------- in the component


def pipeline_with(verifier_config: dict[str, Any], **config: Any):
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config={"verifier": verifier_config, **config})
    return nlp


def stub_config(server: StubServer, **options: Any) -> dict[str, Any]:
    return {"@medcorr_verifiers": "medcorr.ChatVerifier.v1", "base_url": server.base_url, "model": "stub",
            "api_key_env": None, "examples": 0, "backoff": 0.01, **options}


def error_in_first_checked(body, index):
    sentences, checked = note_sentences(body), checked_sentences(body)
    return 200, answer(True, checked[0], sentences[checked[0]].rstrip(".") + " (corrected).")


def test_the_verifier_decides_the_flag_and_the_correction_of_every_note_with_claims(stub):
    server = stub(error_in_first_checked)
    nlp = pipeline_with(stub_config(server), verify_top_k=2)
    texts = [(Path(__file__).parent / "fixtures" / "notes" / name).read_text(encoding="utf-8")
             for name in ("dka.txt", "meningitis.txt")] + ["", "   "]
    docs = list(nlp.pipe(texts, batch_size=4))
    assert server.calls == 2  # empty notes cost no call
    assert len(checked_sentences(server.bodies[0])) == 2
    for doc in docs[:2]:
        verdict = doc._.medcorr
        assert verdict.status is Status.CHECKED and verdict.flag is True
        assert verdict.source.kind is SourceKind.VERIFIER
        assert verdict.error_sentence == min(c.sentence for c in verdict.claims[:2])  # the first sentence asked about
        [finding] = verdict.findings
        assert finding.corrected_sentence.endswith("(corrected).") and finding.correction_source == verdict.source.name
        assert list(doc.spans["medcorr"])[0]._.medcorr == finding
        [entry] = verdict_to_bundle(verdict, "DocumentReference/1/_history/1")["entry"]
        assert entry["resource"]["severity"] == "moderate"
        assert sourced_correction(verdict) == finding.corrected_sentence
    assert [d._.medcorr.status for d in docs[2:]] == [Status.EMPTY, Status.EMPTY]


def test_a_failed_verification_is_unverified_never_no_error(stub):
    server = stub(lambda body, i: (500, "down"))
    nlp = pipeline_with(stub_config(server, max_retries=0))
    verdict = nlp((Path(__file__).parent / "fixtures" / "notes" / "dka.txt").read_text(encoding="utf-8"))._.medcorr
    assert verdict.status is Status.UNVERIFIED and verdict.flag is None and "HTTP 500" in verdict.status_reason
    assert "entry" not in verdict_to_bundle(verdict, "DocumentReference/1/_history/1")


def test_the_medec_runner_and_check_texts_keep_as_many_requests_going_as_the_verifier_allows(stub):
    """Their default pipe batch (16 notes) is raised to the verifier's 20 notes in flight."""
    from medcorr.medec.io import MedecRecord, MedecSentence
    from medcorr.medec.run import run_medec
    from medcorr.pipeline import check_texts

    server = stub(lambda body, i: (200, answer(False)), delay=1.0)
    nlp = pipeline_with(stub_config(server, max_concurrency=20, max_retries=0))
    texts = [f"{NOTE} Record {i}." for i in range(20)]
    assert [v.status for v in check_texts(nlp, texts)] == [Status.CHECKED] * 20
    assert server.max_in_flight == 20
    server.max_in_flight = 0
    sentences = [part.strip() + "." for part in NOTE.split(".") if part.strip()]
    records = [MedecRecord(f"n{i}", " ".join([*sentences, f"Record {i}."]),
                           [MedecSentence(j, text) for j, text in enumerate([*sentences, f"Record {i}."])])
               for i in range(20)]
    assert len(run_medec(nlp, records)) == 20 and server.max_in_flight == 20


def test_the_verifier_is_chosen_in_a_spacy_config(stub, tmp_path):
    server = stub(lambda body, i: (200, answer(False)))
    config = Config().from_str(f"""
[nlp]
lang = "en"
pipeline = ["medcorr"]

[components]

[components.medcorr]
factory = "medcorr"

[components.medcorr.verifier]
@medcorr_verifiers = "medcorr.VotingVerifier.v1"

[components.medcorr.verifier.verifiers]

[components.medcorr.verifier.verifiers.first]
@medcorr_verifiers = "medcorr.ChatVerifier.v1"
base_url = "{server.base_url}"
model = "stub"
api_key_env = null
examples = 0

[components.medcorr.verifier.verifiers.second]
@medcorr_verifiers = "medcorr.ChatVerifier.v1"
base_url = "{server.base_url}"
model = "stub-2"
api_key_env = null
examples = 0
""")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert type(nlp.get_pipe("medcorr").verifier).__name__ == "VotingVerifier"
    verdict = nlp("Fever and cough. Chest x-ray shows consolidation. He is treated with amoxicillin.")._.medcorr
    assert verdict.flag is False and verdict.status is Status.CHECKED and server.calls == 2


# ----------------------------------------------------------------------------- a real server (llm)


@pytest.mark.llm
def test_a_real_server_judges_notes_through_the_pipeline_and_a_rerun_is_cached(llm_server, tmp_path):
    config = {"@medcorr_verifiers": "medcorr.ChatVerifier.v1", "base_url": llm_server.base_url,
              "model": llm_server.model, "api_key_env": None, "examples": 1, "max_tokens": 96, "timeout": 300,
              "response_format": "json_object_schema", "cache_dir": str(tmp_path)}
    texts = [(Path(__file__).parent / "fixtures" / "notes" / name).read_text(encoding="utf-8")
             for name in ("dka.txt", "uti_drug.txt")]
    nlp = pipeline_with(config, checks=None)
    verdicts = [doc._.medcorr for doc in nlp.pipe(texts)]
    stats = nlp.get_pipe("medcorr").verifier.stats()
    # SmolLM2-135M answers in the constrained schema; whether it judges well is not what this measures
    assert all(v.status in (Status.CHECKED, Status.UNVERIFIED) for v in verdicts)
    for verdict in verdicts:
        assert (verdict.flag is None) == (verdict.status is Status.UNVERIFIED)
        if verdict.flag:
            assert verdict.findings[0].correction_source == verdict.source.name
    assert len(texts) <= stats["calls"] <= 2 * len(texts) and stats["prompt_tokens"] > 200
    rerun = pipeline_with(config, checks=None)
    assert [doc._.medcorr for doc in rerun.pipe(texts)] == verdicts
    assert rerun.get_pipe("medcorr").verifier.stats()["calls"] == 0
