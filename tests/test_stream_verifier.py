"""medcorr stream with a language-model verifier in the pipeline (``pipelines/medcorr_verifier_*.cfg``).

What is checked:

* a verifier that fails on a note (endpoint down, HTTP errors) gives that note an output with status
  ``unverified`` (no DetectedIssue, header ``medcorr.status: unverified``, flag ``unjudged``), committed like
  any other; never "no error". With a scripted server failing for a window of calls (``kafka``), and with
  the real llama.cpp server killed mid-run and restarted on the same port (``llm``);
* a consumer waiting on an endpoint slower than its session timeout keeps its partitions (kafka-python's
  background thread heartbeats), and ``max_poll_interval_ms`` is sized to the verifier's worst case
  (:mod:`medcorr.stream.sizing`): too small a value is refused, an unset one is raised; without that, the
  same slow endpoint makes the consumer leave its group;
* the verifier's counters and a per-status count of outputs in the Prometheus metrics.

Tests marked ``kafka`` use the tansu broker; ``llm`` the llama.cpp server with SmolLM2-135M.
"""
from __future__ import annotations

import json
import logging
import math
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from medcorr.fhir import bundle_verdict
from medcorr.stream.cli import load_nlp
from medcorr.stream.config import StreamConfig
from medcorr.pipeline import verifier_of
from medcorr.stream.consumer import EXIT_OK, EXIT_USAGE, StreamProcessor, pipe_batch_size
from medcorr.stream.metrics import StreamMetrics
from medcorr.stream.records import header_dict
from medcorr.stream.sizing import (
    KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS,
    MARGIN_S,
    poll_budget,
)
from medcorr.verifiers.chat import ASKS_PER_ANSWER, ChatVerifier

sys.path.insert(0, str(Path(__file__).parent))
from chat_stub import answer, user_prompt  # noqa: E402
from kafka_broker import CONSUMER_TIMEOUTS, Broker  # noqa: E402
from test_stream_kafka import config_for, docref, dumps, group_by_source, note_text, topics  # noqa: E402
from test_stream_unit import FakeKafka, note_message, run_fake  # noqa: E402
from test_verifier import stub  # noqa: E402,F401 (fixture: scripted chat servers, closed after the test)

ROOT = Path(__file__).resolve().parents[1]
VERIFIER_CFG = ROOT / "pipelines" / "medcorr_verifier_llamacpp.cfg"
RECORD = re.compile(r"Record (\d+)\.")


# ----------------------------------------------------------------------------- helpers


def verifier_overrides(base_url: str, model: str = "stub", **settings: Any) -> dict[str, Any]:
    """``pipeline_overrides`` pointing the shipped llama.cpp verifier config at ``base_url``: no cache (a
    cached answer would hide the endpoint), no retrieved examples, short timeouts; evidence checks off so
    that the verifier alone decides every verdict."""
    values: dict[str, Any] = {"base_url": base_url, "model": model, "cache_dir": None, "examples": 0,
                              "max_tokens": 64, "timeout": 5, "max_retries": 1, "backoff": 0.05,
                              "api_key_env": None}
    values.update(settings)
    overrides = {f"components.medcorr.verifier.{key}": value for key, value in values.items()}
    overrides["components.medcorr.checks"] = None
    return overrides


def numbered_note(i: int) -> bytes:
    """A checkable note whose text carries ``Record i.`` (so a scripted server can tell the notes apart)."""
    return dumps(docref(f"note-{i}", note_text(i, wrong=i % 3 == 0, extra=f"Record {i}.")))


def record_of(body: dict[str, Any]) -> int:
    return int(RECORD.search(user_prompt(body)).group(1))


def note_index(record: Any) -> int:
    return int(record.key.decode().rsplit("-", 1)[1])


def check_output_shape(record: Any) -> tuple[str, bool | None]:
    """The output's status and flag, after checking that headers and Bundle agree; an unverified note has
    no DetectedIssue and no flag."""
    headers = header_dict(record.headers)
    bundle = json.loads(record.value)
    verdict = bundle_verdict(bundle)
    status = headers["medcorr.status"]
    assert verdict["status"] == status
    flag = {"true": True, "false": False, "unjudged": None}[headers["medcorr.verdict.flag"]]
    assert verdict.get("flag") == flag
    if status == "unverified":
        assert flag is None and "entry" not in bundle and headers["medcorr.findings"] == "0"
        assert "medcorr.verdict.score" not in headers
    else:
        assert status == "checked" and flag is not None
    return status, flag


class Watched(StreamProcessor):
    """Records assignments, revocations (before closing) and the time of every consumer poll."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.assigned: list[float] = []
        self.revoked: list[float] = []
        self.polls: list[float] = []
        self.closing = False

    def on_assigned(self, assigned: list[Any]) -> None:
        self.assigned.append(time.monotonic())
        super().on_assigned(assigned)

    def on_revoked(self, revoked: list[Any]) -> None:
        if revoked and not self.closing:  # (the first join "revokes" the empty assignment)
            self.revoked.append(time.monotonic())
        super().on_revoked(revoked)

    def _poll(self, timeout_ms: int) -> list[Any]:
        before = self._polled_messages
        limited = self.config.max_messages is not None and before >= self.config.max_messages
        if not limited:
            self.polls.append(time.monotonic())
        return super()._poll(timeout_ms)

    def _close(self, clean: bool) -> None:
        self.closing = True
        self.closed_at = time.monotonic()
        super()._close(clean)

    def longest_poll_gap(self) -> float:
        """The longest time the consumer went without ``poll()`` while in its group (the last stretch ends
        when the run closes the consumer: with ``max_messages`` reached it polls no more)."""
        times = self.polls + [self.closed_at]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


class Recorder:
    """Wraps a verifier: every call's start, end and, per note (``Record i.``), why it failed (None: it
    did not)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[float, float, list[tuple[int, str | None]]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, requests):
        started = time.monotonic()
        judgements = self.inner(requests)
        notes = [(int(RECORD.search(r.note).group(1)), j.evidence.reason if j.error is None else None)
                 for r, j in zip(requests, judgements)]
        self.calls.append((started, time.monotonic(), notes))
        return judgements


def wait_until(predicate, timeout: float, what: str, thread: threading.Thread | None = None) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        if thread is not None and not thread.is_alive():
            raise AssertionError(f"the stream stopped before {what}")
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def run_in_thread(processor: StreamProcessor) -> tuple[threading.Thread, dict[str, int]]:
    result: dict[str, int] = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", processor.run()), daemon=True)
    thread.start()
    return thread, result


@pytest.fixture(scope="module")
def verifier_nlp():
    """The shipped llama.cpp verifier pipeline (its verifier is replaced per test)."""
    return load_nlp(StreamConfig(bootstrap_servers="unused:9092", pipeline_config=str(VERIFIER_CFG),
                                 pipeline_overrides=verifier_overrides("http://127.0.0.1:9/v1")).validate())


def with_verifier(nlp: Any, base_url: str, **settings: Any) -> ChatVerifier:
    options = {"model": "stub", "api_key_env": None, "examples": 0, "backoff": 0.01, **settings}
    verifier = ChatVerifier(base_url, **options)
    nlp.get_pipe("medcorr").verifier = verifier
    return verifier


# ----------------------------------------------------------------------------- sizing max_poll_interval_ms


def test_poll_budget_bounds_the_verifier_work_between_two_polls(verifier_nlp):
    verifier = with_verifier(verifier_nlp, "http://127.0.0.1:9/v1", timeout=20, max_retries=2, backoff=1.0,
                             max_concurrency=3, samples=2)
    pipe = pipe_batch_size(verifier_nlp, 32)
    assert pipe == 8  # the CPU detector: pipe batches of 8 inside a Kafka batch
    budget = poll_budget(verifier_nlp, 32, pipe)
    # one request: 3 attempts of 20 s, and between them backoff or Retry-After, the latter capped at 60 s
    request = 3 * 20 + 2 * verifier.client.max_retry_after
    # one call on 8 notes x 2 samples at 3 at once: 6 rounds of two questions in a row
    assert budget.notes_per_call == 8 and budget.call_s == math.ceil(16 / 3) * ASKS_PER_ANSWER * request
    assert budget.calls == 32 // 8 + 1  # a Kafka batch of pipe batches, plus the one read ahead
    assert budget.needed_ms == round((budget.calls * budget.call_s + MARGIN_S) * 1000)
    assert poll_budget(verifier_nlp, 3, pipe_batch_size(verifier_nlp, 3)).calls == 2
    from medcorr.pipeline import build_pipeline

    assert poll_budget(build_pipeline(), 32, 8) is None  # no verifier: nothing to size


def test_a_vote_is_bounded_by_its_slowest_member_and_an_unbounded_verifier_by_nothing():
    from medcorr.verifiers.base import worst_case_seconds
    from medcorr.verifiers.voting import VotingVerifier

    quick = ChatVerifier("http://127.0.0.1:9/v1", model="a", api_key_env=None, examples=0, timeout=5,
                         max_retries=0, max_concurrency=4)
    slow = ChatVerifier("http://127.0.0.1:9/v1", model="b", api_key_env=None, examples=0, timeout=30,
                        max_retries=1, backoff=2.0, max_concurrency=2)
    assert quick.worst_case_seconds(8) == 2 * ASKS_PER_ANSWER * 5  # 8 notes at 4 at once, no retry
    slow_call = 4 * ASKS_PER_ANSWER * (2 * 30 + slow.client.max_retry_after)
    assert slow.worst_case_seconds(8) == slow_call
    assert VotingVerifier({"a": quick, "b": slow}).worst_case_seconds(8) == slow_call

    class Unbounded:
        name = "in-process"

        def __call__(self, requests):
            return []

    assert worst_case_seconds(Unbounded(), 8) is None
    assert VotingVerifier({"a": quick, "u": Unbounded()}).worst_case_seconds(8) is None
    assert worst_case_seconds(Unbounded(), 0) == 0.0


def test_pipe_batches_hold_as_many_notes_as_the_verifier_can_have_in_flight(verifier_nlp, stub):
    """A verifier allowed 24 requests at once gets all 24 notes of a Kafka batch in one pipe batch: the
    endpoint sees 24 requests in flight (pipe batches of the CPU detector's 8 would cap it at 8)."""
    server = stub(lambda body, i: (200, answer(False)), delay=1.0)
    verifier = with_verifier(verifier_nlp, server.base_url, timeout=10, max_retries=0, max_concurrency=24)
    assert verifier.notes_in_flight == 24 and pipe_batch_size(verifier_nlp, 64) == 24
    assert pipe_batch_size(verifier_nlp, 12) == 12  # never more than the Kafka batch
    batch = [note_message(i, note_text(i, False, f"Record {i}.")) for i in range(24)]
    code, _, processor = run_fake([batch], verifier_nlp, batch_size=24)
    assert code == EXIT_OK and processor.summary.processed == 24
    assert server.max_in_flight == 24
    with_verifier(verifier_nlp, server.base_url, max_concurrency=6, samples=3)
    assert pipe_batch_size(verifier_nlp, 64) == 8  # 2 notes fill 6 requests: the detector's overlap batch


def test_notes_in_flight_of_chat_and_voting_verifiers():
    from medcorr.pipeline import build_pipeline, verifier_batch
    from medcorr.verifiers.base import notes_in_flight
    from medcorr.verifiers.voting import VotingVerifier

    def chat(**settings: Any) -> ChatVerifier:
        return ChatVerifier("http://127.0.0.1:9/v1", model="m", api_key_env=None, examples=0, **settings)

    assert chat(max_concurrency=32, samples=3).notes_in_flight == 11  # 11 notes x 3 samples fill 32
    assert chat(max_concurrency=1, samples=5).notes_in_flight == 1
    vote = VotingVerifier({"a": chat(max_concurrency=4), "b": chat(max_concurrency=40, samples=2)})
    assert vote.notes_in_flight == 20
    assert notes_in_flight(object()) == 1  # a verifier that does not say
    assert verifier_batch(build_pipeline(), 16) == 16  # no verifier: unchanged


def run_guarded(nlp: Any, **config: Any) -> tuple[int, FakeKafka, StreamProcessor]:
    return run_fake([[note_message(0, "Fever and cough. Treated with amoxicillin.")]], nlp, **config)


def consumer_settings(kafka: FakeKafka) -> dict[str, Any]:
    return next(event[1] for event in kafka.events if event[0] == "consumer")


def test_a_max_poll_interval_below_the_verifier_worst_case_is_refused_in_one_line(verifier_nlp, stub, caplog):
    server = stub(lambda body, i: (200, answer(False)))
    with_verifier(verifier_nlp, server.base_url, timeout=20, max_retries=0, max_concurrency=1)
    budget = poll_budget(verifier_nlp, 2, pipe_batch_size(verifier_nlp, 2))
    assert budget.needed_ms == (2 * (2 * 2 * 20) + 60) * 1000  # 2 calls of 2 notes, one at a time, 2 asks of 20 s
    with caplog.at_level(logging.ERROR, logger="medcorr.stream"):
        code, kafka, _ = run_guarded(verifier_nlp, batch_size=2, kafka={"max_poll_interval_ms": 120_000})
    assert code == EXIT_USAGE
    assert not any(event[0] == "consumer" for event in kafka.events)  # refused before connecting
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == "medcorr.stream"]
    assert "\n" not in line
    assert "max_poll_interval_ms=120000 is too small" in line and f">= {budget.needed_ms}" in line
    assert server.calls == 0

    code, kafka, processor = run_guarded(verifier_nlp, batch_size=2, kafka={"max_poll_interval_ms": budget.needed_ms})
    assert code == EXIT_OK and consumer_settings(kafka)["max_poll_interval_ms"] == budget.needed_ms
    assert processor.summary.processed == 1 and server.calls == 1


def test_an_unset_max_poll_interval_is_raised_to_the_verifier_worst_case(verifier_nlp, stub, caplog):
    server = stub(lambda body, i: (200, answer(False)))
    with_verifier(verifier_nlp, server.base_url, timeout=100, max_retries=1, max_concurrency=2)
    needed = poll_budget(verifier_nlp, 8, pipe_batch_size(verifier_nlp, 8)).needed_ms
    assert needed > KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS
    with caplog.at_level(logging.INFO, logger="medcorr.stream"):
        code, kafka, processor = run_guarded(verifier_nlp, batch_size=8)
    assert code == EXIT_OK and consumer_settings(kafka)["max_poll_interval_ms"] == needed
    assert processor.metrics.stale_after == needed / 1000  # /healthz waits as long for the main loop
    assert any(f"raised from {KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS} to {needed}" in r.getMessage()
               for r in caplog.records)
    # a fast verifier fits kafka-python's default, which is then left alone
    with_verifier(verifier_nlp, server.base_url, timeout=5, max_retries=0, max_concurrency=8)
    code, kafka, processor = run_guarded(verifier_nlp, batch_size=8)
    assert code == EXIT_OK and "max_poll_interval_ms" not in consumer_settings(kafka)
    assert processor.metrics.stale_after == 300.0


def test_metrics_count_outputs_by_status_and_the_verifier_counters(verifier_nlp, stub):
    failing = {1}

    def script(body, index):
        return (503, "down") if record_of(body) in failing else (200, answer(False, rationale="scripted"))

    server = stub(script)
    with_verifier(verifier_nlp, server.base_url, timeout=5, max_retries=1, max_concurrency=4)
    batch = [note_message(i, note_text(i, False, f"Record {i}.")) for i in range(3)]
    code, kafka, processor = run_fake([batch], verifier_nlp, batch_size=3)
    assert code == EXIT_OK
    metrics = processor.metrics
    statuses = Counter(sent[3]["medcorr.status"] for sent in kafka.sent)
    assert statuses == {"checked": 2, "unverified": 1}
    lines = metrics.render().splitlines()
    assert 'medcorr_stream_outputs_total{status="checked"} 2' in lines
    assert 'medcorr_stream_outputs_total{status="unverified"} 1' in lines
    assert "# TYPE medcorr_stream_verifier_calls_total counter" in lines
    assert f"medcorr_stream_verifier_calls_total {server.calls}" in lines and server.calls == 2 + 2
    reported = verifier_of(verifier_nlp).stats()
    assert f"medcorr_stream_verifier_prompt_tokens_total {reported['prompt_tokens']}" in lines
    assert reported["prompt_tokens"] > 0 and reported["completion_tokens"] > 0
    assert f"medcorr_stream_verifier_completion_tokens_total {reported['completion_tokens']}" in lines
    assert "medcorr_stream_verifier_cache_hits_total 0" in lines
    assert "medcorr_stream_verifier_unverified_notes_total 1" in lines
    assert processor.summary.unverified == 1
    from medcorr.pipeline import build_pipeline

    plain = StreamMetrics()
    StreamProcessor(StreamConfig(bootstrap_servers="fake:9092").validate(), build_pipeline(), metrics=plain)
    assert "verifier_calls_total" not in plain.render()  # no verifier, no verifier metrics


# ----------------------------------------------------------------------------- through the broker


@pytest.mark.kafka
def test_a_window_of_failing_calls_gives_unverified_outputs_and_loses_nothing(kafka_broker: Broker, stub):
    """A scripted endpoint answers 503 for calls 4..11 (both attempts of the notes asked then): those notes
    come out ``unverified``, every other note ``checked``; every input has exactly one output; all is
    committed; the metrics agree with the topic."""
    served: dict[int, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def script(body, index):
        status = 503 if 4 <= index < 12 else 200
        with lock:
            served[record_of(body)].append(status)
        return (status, "down") if status != 200 else (200, answer(False, rationale="scripted"))

    server = stub(script)
    total = 16
    names = topics(kafka_broker, "vwin")
    produced = kafka_broker.produce(names["input"], [(f"note-{i}".encode(), numbered_note(i)) for i in range(total)])
    config = config_for(kafka_broker, names, kafka_broker.unique("vwin"), max_messages=total, batch_size=4,
                        pipeline_config=str(VERIFIER_CFG), pipeline_overrides=verifier_overrides(server.base_url))
    metrics = StreamMetrics()
    processor = StreamProcessor(config, load_nlp(config), metrics=metrics)
    assert processor.run() == EXIT_OK

    outputs = kafka_broker.read_all(names["output"], expected=total)
    dead = kafka_broker.read_all(names["dlq"], idle=0.5)
    grouped = group_by_source(outputs, dead)
    assert set(grouped) == {(m.partition, m.offset, None) for m in produced} and not dead
    assert all(len(records) == 1 for records in grouped.values())
    statuses: Counter = Counter()
    for record in outputs:
        status, flag = check_output_shape(record)
        answered = 200 in served[note_index(record)]
        assert status == ("checked" if answered else "unverified"), (note_index(record), served[note_index(record)])
        assert flag is (False if answered else None)  # the scripted model always answers "no error"
        statuses[status] += 1
    assert statuses["unverified"] >= 2 and statuses["checked"] >= 8, statuses
    assert kafka_broker.committed(config.group_id, names["input"]) == dict(Counter(m.partition for m in produced))
    lines = metrics.render().splitlines()
    for status, count in statuses.items():
        assert f'medcorr_stream_outputs_total{{status="{status}"}} {count}' in lines
    assert f"medcorr_stream_verifier_unverified_notes_total {statuses['unverified']}" in lines
    assert f"medcorr_stream_verifier_calls_total {server.calls}" in lines
    print(f"\nwindow of failing calls: {total} notes, {len(outputs)} outputs, {statuses['unverified']} unverified, "
          f"{server.calls} calls")


@pytest.mark.kafka
def test_a_consumer_waiting_on_a_slow_endpoint_keeps_its_partitions(kafka_broker: Broker, stub):
    """Every answer takes 8 s, one at a time: the main thread goes ~16 s without polling, beyond the 6 s
    session timeout; the consumer is assigned once, never revoked, and each note is processed once."""
    server = stub(lambda body, i: (200, answer(False)), delay=8.0)
    total = 4
    names = topics(kafka_broker, "vslow")
    produced = kafka_broker.produce(names["input"], [(f"note-{i}".encode(), numbered_note(i)) for i in range(total)])
    config = config_for(kafka_broker, names, kafka_broker.unique("vslow"), max_messages=total, batch_size=2,
                        pipeline_config=str(VERIFIER_CFG),
                        pipeline_overrides=verifier_overrides(server.base_url, timeout=20, max_retries=0,
                                                              max_concurrency=1))
    processor = Watched(config, load_nlp(config))
    started = time.monotonic()
    assert processor.run() == EXIT_OK
    took = time.monotonic() - started
    gap = processor.longest_poll_gap()
    assert gap > CONSUMER_TIMEOUTS["session_timeout_ms"] / 1000  # the condition under test did happen
    assert len(processor.assigned) == 1 and processor.revoked == []
    outputs = kafka_broker.read_all(names["output"], expected=total)
    grouped = group_by_source(outputs)
    assert set(grouped) == {(m.partition, m.offset, None) for m in produced}
    assert all(len(records) == 1 for records in grouped.values())
    assert all(check_output_shape(record) == ("checked", False) for record in outputs)
    assert server.calls == total  # each note asked once: nothing was redone
    assert kafka_broker.committed(config.group_id, names["input"]) == dict(Counter(m.partition for m in produced))
    print(f"\nslow endpoint: {total} notes, longest gap between polls {gap:.1f}s "
          f"(session timeout {CONSUMER_TIMEOUTS['session_timeout_ms'] / 1000:.0f}s), run {took:.1f}s, no rebalance")


class Unguarded(Watched):
    """The connector without its ``max_poll_interval_ms`` sizing (to show what it prevents)."""

    def _size_poll_interval(self) -> None:
        return None


@pytest.mark.kafka
def test_without_the_sizing_a_slow_endpoint_pushes_the_consumer_out_of_its_group(kafka_broker: Broker, stub, caplog):
    """The same slow endpoint with ``max_poll_interval_ms`` = 3 s and the sizing switched off: the consumer
    leaves its group while the verifier works, its commit is refused, and the batch is redone."""
    server = stub(lambda body, i: (200, answer(False)), delay=4.0)
    names = topics(kafka_broker, "vkick")
    produced = kafka_broker.produce(names["input"], [(f"note-{i}".encode(), numbered_note(i)) for i in range(2)])
    kafka_settings = {**CONSUMER_TIMEOUTS, "max_poll_interval_ms": 3000}
    config = config_for(kafka_broker, names, kafka_broker.unique("vkick"), batch_size=2, kafka=kafka_settings,
                        pipeline_config=str(VERIFIER_CFG),
                        pipeline_overrides=verifier_overrides(server.base_url, timeout=20, max_retries=0,
                                                              max_concurrency=1))
    nlp = load_nlp(config)
    guarded = StreamProcessor(config, nlp)
    assert guarded.run() == EXIT_USAGE  # the connector itself refuses this setting

    processor = Unguarded(config, nlp)
    thread, result = run_in_thread(processor)
    with caplog.at_level(logging.WARNING):
        wait_until(lambda: processor.revoked, 60, "a revocation", thread)
        processor.stop("test: rebalance seen")
        thread.join(timeout=60)
    assert result.get("code") == EXIT_OK
    assert processor.revoked and processor.longest_poll_gap() > 3.0
    messages = [r.getMessage() for r in caplog.records]
    assert any("rejected: partitions were reassigned" in m for m in messages), messages
    # the notes were checked and sent, but their offsets could not be committed: the work is redone
    assert len(kafka_broker.read_all(names["output"], expected=len(produced))) == len(produced)
    assert sum(kafka_broker.committed(config.group_id, names["input"]).values()) == 0
    print(f"\nwithout sizing: left the group after {processor.longest_poll_gap():.1f}s without a poll, "
          f"{len(processor.revoked)} revocation, commit rejected")


# ----------------------------------------------------------------------------- the real llama.cpp server


@pytest.mark.llm
@pytest.mark.kafka
@pytest.mark.slow
def test_llm_server_killed_mid_run_and_restarted_loses_nothing(kafka_broker: Broker, tmp_path, monkeypatch):
    """SmolLM2 on llama.cpp verifies the notes; the server is killed (SIGKILL) after the first outputs and
    restarted on the same port once the notes in hand came out. Every input has exactly one output; every
    note whose verification ran while the server was down is ``unverified`` for want of an answer (never
    ``checked``); after the restart every note gets its answer: ``checked``, or ``unverified`` only when the
    small model's answer was rejected twice (its answers, not the endpoint)."""
    import llm_server

    missing = llm_server.missing_server_modules()
    if missing:
        pytest.skip(f"llama-cpp-python[server] is not installed (missing {', '.join(missing)})")
    gguf = llm_server.find_gguf()
    if gguf is None:
        pytest.skip(f"the {llm_server.GGUF_PACKAGE} GGUF model is not installed")
    process, server = llm_server.start_llama_server(gguf, tmp_path / "llama-1.log")
    processes = [process]
    try:
        problem = llm_server.first_completion_problem(server, process)
        if problem and process.returncode in llm_server.SIGILL_CODES:
            pytest.skip(problem)
        assert problem is None, problem
        port = int(server.base_url.split(":")[2].split("/")[0])

        first, second = 8, 4
        total = first + second
        names = topics(kafka_broker, "vllm")
        produced = kafka_broker.produce(names["input"], [(f"note-{i}".encode(), numbered_note(i)) for i in range(first)])
        # a killed server refuses connections at once, so a long timeout does not slow the down phase; it keeps
        # a loaded machine's slow answers from counting as failures (the sizing raises max_poll_interval_ms)
        config = config_for(kafka_broker, names, kafka_broker.unique("vllm"), max_messages=total, batch_size=2,
                            pipeline_config=str(VERIFIER_CFG),
                            pipeline_overrides=verifier_overrides(server.base_url, server.model, timeout=120,
                                                                  max_retries=1, backoff=0.2, max_concurrency=1))
        nlp = load_nlp(config)
        recorder = Recorder(nlp.get_pipe("medcorr").verifier)
        nlp.get_pipe("medcorr").verifier = recorder
        metrics = StreamMetrics()
        processor = StreamProcessor(config, nlp, metrics=metrics)
        thread, result = run_in_thread(processor)

        wait_until(lambda: processor.summary.processed >= 2, 180, "the first outputs", thread)
        process.kill()
        process.wait(timeout=10)
        killed = time.monotonic()
        wait_until(lambda: processor.summary.processed >= first, 120, "the notes in hand while down", thread)
        restarting = time.monotonic()
        monkeypatch.setattr(llm_server, "free_port", lambda: port)
        process, restarted = llm_server.start_llama_server(gguf, tmp_path / "llama-2.log")
        processes.append(process)
        ready = time.monotonic()
        assert restarted.base_url == server.base_url
        assert llm_server.first_completion_problem(restarted, process) is None
        answering = time.monotonic()
        produced += kafka_broker.produce(names["input"], [(f"note-{i}".encode(), numbered_note(i))
                                                          for i in range(first, total)])
        thread.join(timeout=240)
        assert not thread.is_alive() and result.get("code") == EXIT_OK
    finally:
        for running in processes:
            llm_server.stop(running)

    outputs = kafka_broker.read_all(names["output"], expected=total)
    dead = kafka_broker.read_all(names["dlq"], idle=0.5)
    grouped = group_by_source(outputs, dead)
    assert set(grouped) == {(m.partition, m.offset, None) for m in produced} and not dead
    assert all(len(records) == 1 for records in grouped.values())
    status_of = {note_index(record): check_output_shape(record)[0] for record in outputs}

    verified = [(start, end, notes) for start, end, notes in recorder.calls]
    assert sorted(i for _, _, notes in verified for i, _ in notes) == list(range(total))  # each note asked once
    while_down = [i for start, end, notes in verified if start >= killed and end <= restarting for i, _ in notes]
    after = [i for start, _, notes in verified if start >= ready for i, _ in notes]
    before = [i for _, end, notes in verified if end <= killed for i, _ in notes]
    reasons = {i: reason for _, _, notes in verified for i, reason in notes}
    failed = {i for i, reason in reasons.items() if reason is not None}
    no_answer = {i for i in failed if "no answer from the endpoint" in reasons[i]}
    assert len(while_down) >= 2 and set(while_down) <= no_answer
    assert all(status_of[i] == "unverified" for i in while_down)
    assert sorted(after) == list(range(first, total)) and not no_answer & set(after), reasons
    assert all(status_of[i] == "checked" or reasons[i].startswith("answer rejected twice") for i in after), reasons
    assert sum(status_of[i] == "checked" for i in after) >= len(after) // 2, reasons
    assert len(before) >= 2 and not no_answer & set(before), reasons
    assert {i for i, status in status_of.items() if status == "unverified"} == failed
    assert processor.summary.unverified == len(failed)
    lines = metrics.render().splitlines()
    assert f'medcorr_stream_outputs_total{{status="unverified"}} {len(failed)}' in lines
    assert f"medcorr_stream_verifier_unverified_notes_total {len(failed)}" in lines
    recovered = min(end for start, end, notes in verified if start >= ready) - ready
    checked_after = sum(status_of[i] == "checked" for i in after)
    print(f"\nllama.cpp killed and restarted: {total} notes, {len(outputs)} outputs, {len(failed)} unverified "
          f"({len(no_answer)} for want of an answer, {len(while_down)} of them verified entirely while down; "
          f"{len(failed - no_answer)} with answers rejected twice), {len(before)} verified before the kill, "
          f"{checked_after} of {len(after)} checked after "
          f"the restart; restart took {ready - restarting:.1f}s (first completion {answering - ready:.1f}s later), "
          f"first note verified {recovered:.1f}s after the restart; down {restarting - killed:.1f}s")
