"""Tests of medcorr.OpenAIGenerator.v1 and the shared prompt/parse code.

Three layers: the parser and prompt on canned strings; the HTTP plumbing against small stdlib servers
made here (a scripted chat-completions server, and one that accepts connections but never answers);
and, marked ``llm``, the whole path against a real llama.cpp server running SmolLM2-135M (see
tests/llm_server.py). The 135M model writes poor corrections: those tests check plumbing, not quality.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confection import Config
from spacy.util import registry

from medcorr.finding import ErrorType, Finding
from medcorr.generators.base import CorrectionRequest, Proposal
from medcorr.generators.openai import OpenAIGenerator, make_openai_generator
from medcorr.generators.prompting import (
    REMINDER,
    ParsedReply,
    build_messages,
    extract_first_json_object,
    format_note,
    parse_reply,
    prompt_key,
    select_requests,
    to_proposal,
)

# ----------------------------------------------------------------------------- helpers

SECRET = "Zyxwvutsrq"  # a marker in note text that must never reach a log record


def make_request(
    note: str = "Patient has fever and cough. Chest X-ray shows lobar consolidation. "
    "Diagnosis is asthma. Started on amoxicillin.",
    span: str = "asthma",
    error_type: ErrorType = ErrorType.DIAGNOSIS,
    score: float = 0.9,
    note_score: float = 0.8,
) -> CorrectionRequest:
    """A request whose sentences are split on '. ' and whose finding is the first ``span`` in the note."""
    sentences: list[tuple[int, int]] = []
    start = 0
    for index, char in enumerate(note):
        if char == "." and (index + 1 == len(note) or note[index + 1] == " "):
            sentences.append((start, index + 1))
            start = index + 2
    if start < len(note):
        sentences.append((start, len(note)))
    span_start = note.index(span)
    sentence = next(i for i, (s, e) in enumerate(sentences) if s <= span_start < e)
    finding = Finding(
        start=span_start, end=span_start + len(span), text=span, type=error_type, score=score, sentence=sentence
    )
    return CorrectionRequest(note=note, sentences=tuple(sentences), finding=finding, note_score=note_score)


def answer(error: bool, span: str | None = None, sentence: str | None = None) -> str:
    return json.dumps({"error": error, "corrected_span": span, "corrected_sentence": sentence})


class StubServer:
    """A scripted chat-completions server on 127.0.0.1 (stdlib ThreadingHTTPServer).

    ``script(body, call_index) -> (status, content)`` decides each reply; every request body and
    header set is recorded, and the largest number of requests in flight at once is tracked.
    """

    def __init__(self, script: Callable[[dict[str, Any], int], tuple[int, str]], delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with stub._lock:
                    index = len(stub.bodies)
                    stub.bodies.append(body)
                    stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                    stub.paths.append(self.path)
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    if stub.delay:
                        time.sleep(stub.delay)
                    status, content = stub.script(body, index)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1
                if status == 200:
                    payload = {
                        "id": f"cmpl-{index}",
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                    }
                    data = json.dumps(payload).encode()
                else:
                    data = json.dumps({"error": {"message": content}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def calls(self) -> int:
        return len(self.bodies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub_factory() -> Iterator[Callable[..., StubServer]]:
    servers: list[StubServer] = []

    def make(script: Callable[[dict[str, Any], int], tuple[int, str]], delay: float = 0.0) -> StubServer:
        server = StubServer(script, delay)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


class HangingServer:
    """Accepts TCP connections and reads the request, but never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        self.sock.close()


def generator(base_url: str, **kwargs: Any) -> OpenAIGenerator:
    options: dict[str, Any] = {"model": "stub-model", "backoff": 0.01, "api_key_env": None}
    options.update(kwargs)
    return OpenAIGenerator(base_url=base_url, **options)


# ----------------------------------------------------------------------------- parser, prompt, cascade


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"error": true, "corrected_span": "pneumonia", "corrected_sentence": "Diagnosis is pneumonia."}',
         ParsedReply(True, "pneumonia", "Diagnosis is pneumonia.")),
        ('Sure! Here it is:\n```json\n{"error": true, "corrected_span": " pneumonia "}\n```',
         ParsedReply(True, "pneumonia", None)),
        ('{"error": false, "corrected_span": null, "corrected_sentence": null}', ParsedReply(False)),
        ('{"error": false}', ParsedReply(False)),
        ('{"error": true, "corrected_span": "a } b", "corrected_sentence": ""}', ParsedReply(True, "a } b", None)),
        ('{bad json} then {"error": false}', ParsedReply(False)),
        ('{"error": true, "corrected_span": "x"} {"error": false}', ParsedReply(True, "x", None)),
    ],
)
def test_parse_reply_accepts_valid_answers(text: str, expected: ParsedReply) -> None:
    assert parse_reply(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "The span is wrong, it should be pneumonia.",
        '{"error": "true", "corrected_span": "pneumonia"}',  # string, not bool
        '{"error": 1, "corrected_span": "pneumonia"}',
        '{"error": true}',  # error without a correction
        '{"error": true, "corrected_span": ""}',
        '{"error": true, "corrected_span": 5}',
        '{"error": true, "corrected_span": "x", "corrected_sentence": ["x"]}',
        '{"corrected_span": "pneumonia"}',
        '{"error": true, "corrected_span": "pneumonia"',  # unterminated
    ],
)
def test_parse_reply_rejects_invalid_answers(text: str | None) -> None:
    assert parse_reply(text) is None


def test_extract_first_json_object_handles_escapes_and_nesting() -> None:
    text = 'x {"a": "q\\"}", "b": {"c": 1}} y {"d": 2}'
    assert json.loads(extract_first_json_object(text) or "null") == {"a": 'q"}', "b": {"c": 1}}
    assert extract_first_json_object("no object here") is None


def test_prompt_numbers_sentences_and_describes_the_finding() -> None:
    request = make_request(error_type=ErrorType.CAUSAL_ORGANISM)
    assert format_note(request).splitlines() == [
        "[0] Patient has fever and cough.",
        "[1] Chest X-ray shows lobar consolidation.",
        "[2] Diagnosis is asthma.",
        "[3] Started on amoxicillin.",
    ]
    messages = build_messages(request)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "sentence id: 2" in user
    assert 'span: "asthma"' in user
    assert "error type: causal organism" in user
    assert '"corrected_span"' in user and '"corrected_sentence"' in user
    assert prompt_key("m", messages) != prompt_key("other", messages)
    assert len(prompt_key("m", messages)) == 64


def test_to_proposal_substitutes_span_and_handles_veto() -> None:
    request = make_request()
    proposal = to_proposal(ParsedReply(True, "pneumonia", None), request, allow_veto=False)
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert proposal.corrected_sentence == "Diagnosis is pneumonia."
    # the model's sentence is used when it holds the corrected span, else the span is substituted
    own = to_proposal(ParsedReply(True, "pneumonia", "The diagnosis is pneumonia."), request, False)
    assert own.corrected_sentence == "The diagnosis is pneumonia."
    other = to_proposal(ParsedReply(True, "pneumonia", "Something unrelated."), request, False)
    assert other.corrected_sentence == "Diagnosis is pneumonia."
    # a "correction" equal to the span is no proposal
    assert to_proposal(ParsedReply(True, "asthma", None), request, False) == Proposal()
    assert to_proposal(ParsedReply(False), request, allow_veto=True) == Proposal(veto=True)
    assert to_proposal(ParsedReply(False), request, allow_veto=False) == Proposal()
    assert to_proposal(None, request, allow_veto=True) == Proposal()


def test_select_requests_applies_threshold_and_top_k() -> None:
    note_a = "Fever. Diagnosis is asthma. Given penicillin. Cough noted."
    a1 = make_request(note_a, "asthma", score=0.5, note_score=0.9)
    a2 = make_request(note_a, "penicillin", score=0.9, note_score=0.9)
    a3 = make_request(note_a, "Cough", score=0.7, note_score=0.9)
    low = make_request("Fever. Diagnosis is flu.", "flu", score=0.99, note_score=0.2)
    assert select_requests([a1, a2, a3, low], 0.5, 2) == [False, True, True, False]
    assert select_requests([a1, a2, a3, low], 0.0, None) == [True, True, True, True]
    assert select_requests([a1, a2, a3, low], 0.0, 1) == [False, True, False, True]
    bad = CorrectionRequest(note="x", sentences=(), finding=a1.finding, note_score=1.0)
    assert select_requests([bad], 0.0, None) == [False]


# ----------------------------------------------------------------------------- HTTP plumbing (stub servers)


def test_protocol_request_shape_and_proposal(stub_factory, monkeypatch) -> None:
    server = stub_factory(lambda body, i: (200, answer(True, "pneumonia", "Diagnosis is pneumonia.")))
    monkeypatch.setenv("MEDCORR_TEST_KEY", "sk-test-123")
    gen = generator(server.base_url, api_key_env="MEDCORR_TEST_KEY")
    request = make_request()
    [proposal] = gen([request])
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert proposal.corrected_sentence == "Diagnosis is pneumonia."
    assert not proposal.veto
    assert server.paths == ["/v1/chat/completions"]
    body = server.bodies[0]
    assert body["model"] == "stub-model"
    assert body["temperature"] == 0
    assert body["messages"] == build_messages(request)
    assert "response_format" not in body
    assert server.headers[0]["authorization"] == "Bearer sk-test-123"
    assert gen.stats == {"llm_calls": 1, "cache_hits": 0, "failures": 0}


def test_azure_style_key_header_and_api_version(stub_factory, monkeypatch) -> None:
    server = stub_factory(lambda body, i: (200, answer(False)))
    monkeypatch.setenv("MEDCORR_TEST_KEY", "azure-key")
    gen = generator(server.base_url, api_key_env="MEDCORR_TEST_KEY", api_key_header="api-key",
                    api_version="2024-10-21", json_mode=True)
    gen([make_request()])
    assert server.paths == ["/v1/chat/completions?api-version=2024-10-21"]
    assert server.headers[0]["api-key"] == "azure-key"
    assert "authorization" not in server.headers[0]
    assert server.bodies[0]["response_format"] == {"type": "json_object"}


def test_unparseable_reply_is_retried_once_with_reminder(stub_factory) -> None:
    replies = ["I think the diagnosis is pneumonia.", answer(True, "pneumonia")]
    server = stub_factory(lambda body, i: (200, replies[i]))
    gen = generator(server.base_url)
    [proposal] = gen([make_request()])
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert server.calls == 2
    retry = server.bodies[1]["messages"]
    assert retry[:2] == server.bodies[0]["messages"]
    assert retry[2] == {"role": "assistant", "content": replies[0]}
    assert retry[3] == {"role": "user", "content": REMINDER}
    assert gen.stats == {"llm_calls": 2, "cache_hits": 0, "failures": 0}


def test_reply_unparseable_twice_gives_empty_proposal(stub_factory, caplog) -> None:
    server = stub_factory(lambda body, i: (200, "no json here"))
    gen = generator(server.base_url, allow_veto=True)
    with caplog.at_level(logging.WARNING, logger="medcorr"):
        [proposal] = gen([make_request()])
    assert proposal == Proposal()
    assert server.calls == 2
    assert gen.failures == 1
    assert any("did not parse" in r.getMessage() for r in caplog.records)


def test_server_errors_are_retried_with_backoff_then_succeed(stub_factory) -> None:
    statuses = [503, 500, 200]
    server = stub_factory(lambda body, i: (statuses[i], answer(True, "pneumonia")))
    gen = generator(server.base_url, max_retries=2, backoff=0.05)
    started = time.monotonic()
    [proposal] = gen([make_request()])
    elapsed = time.monotonic() - started
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert server.calls == 3
    assert elapsed >= 0.05 + 0.1  # two backoff waits, doubling
    assert gen.failures == 0


def test_client_error_is_not_retried(stub_factory, caplog) -> None:
    server = stub_factory(lambda body, i: (401, "bad key"))
    gen = generator(server.base_url, max_retries=3)
    with caplog.at_level(logging.WARNING, logger="medcorr"):
        [proposal] = gen([make_request()])
    assert proposal == Proposal()
    assert server.calls == 1
    assert gen.stats == {"llm_calls": 1, "cache_hits": 0, "failures": 1}
    assert any("HTTP 401" in r.getMessage() for r in caplog.records)


def test_malformed_envelope_counts_as_failure() -> None:
    html = _HtmlServer()
    try:
        gen = generator(html.base_url, max_retries=1)
        [proposal] = gen([make_request()])
    finally:
        html.close()
    assert proposal == Proposal()
    assert gen.stats == {"llm_calls": 2, "cache_hits": 0, "failures": 1}
    assert html.calls == 2


class _HtmlServer:
    """Answers every POST with 200 and an HTML page (a misconfigured proxy)."""

    def __init__(self) -> None:
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.calls += 1
                data = b"<html>gateway</html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_hanging_server_times_out_within_budget(caplog) -> None:
    hanging = HangingServer()
    try:
        gen = generator(f"http://127.0.0.1:{hanging.port}/v1", timeout=0.5, max_retries=1, backoff=0.1)
        request = make_request(note=f"Patient {SECRET} has fever. Diagnosis is asthma.")
        started = time.monotonic()
        with caplog.at_level(logging.DEBUG, logger="medcorr"):
            [proposal] = gen([request])
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    assert proposal == Proposal()
    # two attempts of 0.5 s plus one 0.1 s backoff; generous upper bound for a loaded machine
    assert 1.0 <= elapsed < 4.0
    assert gen.stats == {"llm_calls": 2, "cache_hits": 0, "failures": 1}
    assert hanging.accepted == 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings, "a timed-out request must be logged as a WARNING"
    for record in caplog.records:
        assert SECRET not in record.getMessage()


def test_unreachable_endpoint_gives_empty_proposal() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: connection refused
    gen = generator(f"http://127.0.0.1:{port}/v1", max_retries=2, backoff=0.01)
    assert gen([make_request()]) == [Proposal()]
    assert gen.stats == {"llm_calls": 3, "cache_hits": 0, "failures": 1}


def test_disk_cache_second_run_makes_no_calls(stub_factory, tmp_path: Path) -> None:
    server = stub_factory(lambda body, i: (200, answer(True, "pneumonia")))
    requests = [make_request(), make_request(note="Cough. Diagnosis is asthma. Rest.", score=0.4)]
    first = generator(server.base_url, cache_dir=str(tmp_path))
    proposals = first(requests)
    assert first.llm_calls == 2 and first.cache_hits == 0
    files = sorted(tmp_path.rglob("*.json"))
    assert len(files) == 2
    entry = json.loads(files[0].read_text())
    assert files[0].stem == entry["key"] and entry["model"] == "stub-model"
    second = generator(server.base_url, cache_dir=str(tmp_path))
    assert second(requests) == proposals
    assert second.stats == {"llm_calls": 0, "cache_hits": 2, "failures": 0}
    assert server.calls == 2
    # a different model name is a different key
    third = generator(server.base_url, cache_dir=str(tmp_path), model="other-model")
    third(requests)
    assert third.llm_calls == 2


def test_network_failures_are_not_cached(stub_factory, tmp_path: Path) -> None:
    statuses = [500, 200]
    server = stub_factory(lambda body, i: (statuses[i], answer(True, "pneumonia")))
    gen = generator(server.base_url, cache_dir=str(tmp_path), max_retries=0)
    assert gen([make_request()]) == [Proposal()]
    assert not list(tmp_path.rglob("*.json"))
    [proposal] = gen([make_request()])
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert len(list(tmp_path.rglob("*.json"))) == 1


def test_corrupt_cache_file_is_a_miss(stub_factory, tmp_path: Path) -> None:
    server = stub_factory(lambda body, i: (200, answer(True, "pneumonia")))
    gen = generator(server.base_url, cache_dir=str(tmp_path))
    gen([make_request()])
    [path] = tmp_path.rglob("*.json")
    path.write_text("{not json")
    again = generator(server.base_url, cache_dir=str(tmp_path))
    [proposal] = again([make_request()])
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert again.stats == {"llm_calls": 1, "cache_hits": 0, "failures": 0}


def test_concurrency_limit_is_respected(stub_factory) -> None:
    server = stub_factory(lambda body, i: (200, answer(True, "pneumonia")), delay=0.3)
    notes = [f"Visit {n}. Diagnosis is asthma. Follow up." for n in range(6)]
    requests = [make_request(note) for note in notes]
    gen = generator(server.base_url, max_concurrency=2)
    started = time.monotonic()
    proposals = gen(requests)
    elapsed = time.monotonic() - started
    assert server.calls == 6
    assert server.max_in_flight == 2
    assert elapsed >= 3 * 0.3  # 6 calls, 2 at a time
    assert all(p.candidates == [("pneumonia", 1.0)] for p in proposals)


def test_results_keep_request_order_under_concurrency(stub_factory) -> None:
    def script(body: dict[str, Any], i: int) -> tuple[int, str]:
        note_line = body["messages"][1]["content"].splitlines()[1]  # "[0] Visit N."
        number = note_line.split()[2].rstrip(".")
        time.sleep(0.05 * (5 - int(number)))  # later notes answer first
        return 200, answer(True, f"drug{number}")

    server = stub_factory(script)
    requests = [make_request(f"Visit {n}. Diagnosis is asthma.") for n in range(6)]
    proposals = generator(server.base_url, max_concurrency=6)(requests)
    assert [p.candidates[0][0] for p in proposals] == [f"drug{n}" for n in range(6)]


def test_identical_prompts_in_a_batch_are_sent_once(stub_factory) -> None:
    server = stub_factory(lambda body, i: (200, answer(True, "pneumonia")))
    gen = generator(server.base_url)
    proposals = gen([make_request(), make_request()])
    assert server.calls == 1
    assert proposals[0] == proposals[1] and proposals[0].candidates


def test_cascade_threshold_and_top_k_skip_calls(stub_factory) -> None:
    server = stub_factory(lambda body, i: (200, answer(True, "pneumonia")))
    note = "Fever. Diagnosis is asthma. Given penicillin. Cough noted."
    requests = [
        make_request(note, "asthma", score=0.9, note_score=0.9),
        make_request(note, "penicillin", score=0.3, note_score=0.9),
        make_request("Rest. Diagnosis is flu.", "flu", score=0.99, note_score=0.1),
    ]
    gen = generator(server.base_url, min_note_score=0.5, top_k_findings=1)
    proposals = gen(requests)
    assert server.calls == 1
    assert 'span: "asthma"' in server.bodies[0]["messages"][1]["content"]
    assert proposals[0].candidates and proposals[1] == Proposal() and proposals[2] == Proposal()
    below = generator(server.base_url, min_note_score=0.95)
    assert below(requests) == [Proposal()] * 3
    assert below.llm_calls == 0 and server.calls == 1


def test_veto_only_when_allowed(stub_factory) -> None:
    server = stub_factory(lambda body, i: (200, answer(False)))
    assert generator(server.base_url, allow_veto=True)([make_request()]) == [Proposal(veto=True)]
    assert generator(server.base_url, allow_veto=False)([make_request()]) == [Proposal()]


def test_logs_never_contain_note_text(stub_factory, caplog) -> None:
    server = stub_factory(lambda body, i: (200, f"the note says {SECRET}"))
    gen = generator(server.base_url)
    with caplog.at_level(logging.DEBUG):
        gen([make_request(note=f"Patient {SECRET} has fever. Diagnosis is asthma.")])
    assert gen.failures == 1
    assert caplog.records
    for record in caplog.records:
        assert SECRET not in record.getMessage()


def test_registered_in_spacy_config(tmp_path: Path) -> None:
    config = Config().from_str(
        f"""
        [generator]
        @medcorr_generators = "medcorr.OpenAIGenerator.v1"
        base_url = "http://localhost:11434/v1/"
        model = "llama3.1:8b"
        api_key_env = null
        timeout = 30
        max_concurrency = 2
        cache_dir = "{tmp_path}"
        min_note_score = 0.5
        top_k_findings = null
        allow_veto = true
        """
    )
    gen = registry.resolve(config)["generator"]
    assert isinstance(gen, OpenAIGenerator)
    assert gen.url == "http://localhost:11434/v1/chat/completions"
    assert (gen.model, gen.timeout, gen.max_concurrency, gen.top_k_findings) == ("llama3.1:8b", 30.0, 2, None)
    assert gen.allow_veto and gen.min_note_score == 0.5 and gen.cache_dir == tmp_path


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"max_retries": -1}, {"max_concurrency": 0}, {"top_k_findings": 0}, {"base_url": ""},
             {"base_url": "localhost:8000/v1"}]
)
def test_invalid_options_are_rejected(kwargs: dict[str, Any]) -> None:
    options = {"base_url": "http://localhost:8000/v1", **kwargs}
    with pytest.raises(ValueError):
        make_openai_generator(**options)


# ----------------------------------------------------------------------------- real llama.cpp server

LLM_REQUESTS = [
    make_request(),
    make_request("Blood culture grew gram-positive cocci in clusters. Organism is E. coli.", "E. coli",
                 ErrorType.CAUSAL_ORGANISM),
    make_request("Patient with type 1 diabetes. Started on metformin.", "metformin", ErrorType.PHARMACOTHERAPY),
]


def real_generator(llm_server, **kwargs: Any) -> OpenAIGenerator:
    options: dict[str, Any] = {
        "model": llm_server.model, "api_key_env": None, "timeout": 120, "max_retries": 1, "backoff": 0.5,
        "max_tokens": 96, "json_mode": True, "top_k_findings": None,
    }
    options.update(kwargs)
    return OpenAIGenerator(base_url=llm_server.base_url, **options)


@pytest.mark.llm
def test_llm_protocol_end_to_end(llm_server, tmp_path: Path) -> None:
    # without json_mode the small model often writes prose: the retry and "no proposal" paths run too
    gen = real_generator(llm_server, cache_dir=str(tmp_path), allow_veto=True, json_mode=False)
    proposals = gen(LLM_REQUESTS)
    assert len(proposals) == len(LLM_REQUESTS)
    assert all(isinstance(p, Proposal) for p in proposals)
    # one call per request, two when the first reply did not parse; the server answered every call
    assert len(LLM_REQUESTS) <= gen.llm_calls <= 2 * len(LLM_REQUESTS)
    entries = [json.loads(p.read_text()) for p in tmp_path.rglob("*.json")]
    assert len(entries) == len(LLM_REQUESTS), "every request got an HTTP answer (none failed on the network)"
    assert gen.failures == sum(entry["answer"] is None for entry in entries)
    # proposals agree with the parsed answers recorded in the cache
    by_key = {entry["key"]: entry["answer"] for entry in entries}
    for request, proposal in zip(LLM_REQUESTS, proposals):
        parsed = by_key[prompt_key(llm_server.model, build_messages(request))]
        expected = to_proposal(ParsedReply(**parsed) if parsed else None, request, allow_veto=True)
        assert proposal == expected
        assert proposal.veto == bool(parsed is not None and not parsed["error"])


@pytest.mark.llm
def test_llm_disk_cache_second_run_makes_no_calls(llm_server, tmp_path: Path) -> None:
    first = real_generator(llm_server, cache_dir=str(tmp_path))
    proposals = first(LLM_REQUESTS[:2])
    assert first.llm_calls >= 2
    second = real_generator(llm_server, cache_dir=str(tmp_path))
    assert second(LLM_REQUESTS[:2]) == proposals
    assert second.stats == {"llm_calls": 0, "cache_hits": 2, "failures": 0}


@pytest.mark.llm
def test_llm_deterministic_and_concurrency_safe(llm_server) -> None:
    sequential = real_generator(llm_server, max_concurrency=1)
    parallel = real_generator(llm_server, max_concurrency=3)
    assert parallel(LLM_REQUESTS) == sequential(LLM_REQUESTS)


@pytest.mark.llm
def test_llm_cascade_threshold_makes_no_call(llm_server) -> None:
    low = [make_request(note_score=0.2), make_request(note="Cough. Diagnosis is asthma.", note_score=0.4)]
    gen = real_generator(llm_server, min_note_score=0.5)
    assert gen(low) == [Proposal(), Proposal()]
    assert gen.llm_calls == 0
    mixed = [make_request(note_score=0.2), make_request(note="Cough. Diagnosis is asthma.", note_score=0.9)]
    gen(mixed)
    assert 1 <= gen.llm_calls <= 2


@pytest.mark.llm
def test_llm_veto_flags_follow_allow_veto(llm_server, tmp_path: Path) -> None:
    strict = real_generator(llm_server, cache_dir=str(tmp_path), allow_veto=False)
    kept = strict(LLM_REQUESTS)
    assert not any(p.veto for p in kept)
    lenient = real_generator(llm_server, cache_dir=str(tmp_path), allow_veto=True)
    vetoed = lenient(LLM_REQUESTS)
    assert lenient.llm_calls == 0  # same prompts, answered from the cache
    for keep, veto in zip(kept, vetoed):
        if veto.veto:
            assert keep == Proposal()  # a "not an error" answer: kept without correction, or vetoed
        else:
            assert keep == veto


@pytest.mark.llm
def test_llm_timeout_against_real_server_gives_empty_proposal(llm_server) -> None:
    # 1 ms is far below what any generation takes: every attempt times out, nothing raises
    gen = real_generator(llm_server, timeout=0.001, max_retries=1, backoff=0.01)
    started = time.monotonic()
    assert gen([LLM_REQUESTS[0]]) == [Proposal()]
    assert time.monotonic() - started < 5
    assert gen.stats == {"llm_calls": 2, "cache_hits": 0, "failures": 1}
