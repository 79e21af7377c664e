"""medcorr stream against a real Kafka-compatible broker (tansu, memory storage): delivery guarantees.

Every test counts records by source coordinates (``medcorr.source.partition`` / ``.offset`` / ``.entry``):
each input (or Bundle entry) must give exactly one output or one dead-letter record; after a crash,
duplicates are allowed only for work that was not committed.

``PIPELINE`` picks the spaCy pipeline: ``"real"`` is the shipped default pipeline
(``medcorr.pipeline.build_pipeline()``, what ``medcorr stream`` runs without ``--pipeline-config``);
``"fake"`` is the deterministic test component in tests/stream_fake_pipeline.py. Override with
MEDCORR_TEST_STREAM_PIPELINE=fake|real.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from medcorr.fhir import bundle_verdict
from medcorr.pipeline import build_pipeline, verdict_of
from medcorr.stream.config import StreamConfig
from medcorr.stream.consumer import EXIT_BROKER, EXIT_OK, StreamProcessor
from medcorr.stream.metrics import StreamMetrics, start_metrics_server
from medcorr.stream.records import header_dict

sys.path.insert(0, str(Path(__file__).parent))
from kafka_broker import CONSUMER_TIMEOUTS, Broker  # noqa: E402
from stream_fake_pipeline import CRASH_MARKER  # noqa: E402

PIPELINE = os.environ.get("MEDCORR_TEST_STREAM_PIPELINE", "fake")  # "real" | "fake"

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
CANARY = "CANARY-Zq81-never-log-me"

pytestmark = pytest.mark.kafka


# ----------------------------------------------------------------------------- pipeline


def pipeline_settings(delay: float = 0.0) -> dict[str, Any]:
    """``pipeline_config`` / ``code`` / overrides for the selected pipeline (``delay`` only slows the fake)."""
    if PIPELINE == "fake":
        return {"pipeline_config": str(DATA / "stream_fake.cfg"), "code": [str(Path(__file__).parent / "stream_fake_pipeline.py")],
                "pipeline_overrides": {"components.medcorr.delay": delay}}
    return {"pipeline_config": None, "code": [], "pipeline_overrides": {}}


#: int8 dynamic quantization scales activations per ONNX batch, so a note's score through the broker (other
#: batch mates) can differ from offline nlp.pipe by up to ~3e-2 (documented in the README); the fake is exact.
SCORE_TOLERANCE = 5e-2


@pytest.fixture(scope="module")
def real_nlp():
    """The shipped default pipeline: the mixed stream checks real verdicts of clean and error notes."""
    return build_pipeline()


@pytest.fixture(scope="module")
def nlp():
    settings = pipeline_settings()
    return build_pipeline(settings["pipeline_config"], overrides=settings["pipeline_overrides"] or None)


class CrashOn:
    """Wraps a pipeline so that notes holding :data:`CRASH_MARKER` raise (for either pipeline)."""

    def __init__(self, nlp: Any) -> None:
        self.nlp = nlp
        self.pipe_names = nlp.pipe_names
        self.get_pipe = nlp.get_pipe

    def __call__(self, text: str):
        if CRASH_MARKER in text:
            raise RuntimeError("simulated model failure")
        return self.nlp(text)

    def pipe(self, texts, batch_size: int = 32):
        texts = list(texts)
        if any(CRASH_MARKER in text for text in texts):
            raise RuntimeError("simulated model failure in a batch")
        return self.nlp.pipe(texts, batch_size=batch_size)


# ----------------------------------------------------------------------------- inputs

CASES = [
    ("fever and productive cough", "community-acquired pneumonia", "amoxicillin", "azithromycin"),
    ("dysuria and urinary frequency", "acute cystitis", "nitrofurantoin", "amoxicillin"),
    ("fever and myalgia", "influenza", "oseltamivir", "amoxicillin"),
    ("crushing substernal chest pain", "acute myocardial infarction", "aspirin", "appendectomy"),
    ("right lower quadrant pain", "acute appendicitis", "appendectomy", "streptococcus vaccine"),
]


def note_text(i: int, wrong: bool, extra: str = "") -> str:
    symptoms, diagnosis, right, wrong_term = CASES[i % len(CASES)]
    treatment = wrong_term if wrong else right
    return (f"A {20 + i % 60}-year-old patient presents with {symptoms} for {i % 5 + 1} days. Temperature is "
            f"{37 + i % 3}.{i % 10} C. Examination is consistent with {diagnosis}. The patient is treated with "
            f"{treatment}. Follow-up in {i % 4 + 1} weeks. {extra}").strip()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def docref(rid: str | None, text: str | None = None, version: str | None = "1", attachment: dict | None = None,
           **extra: Any) -> dict:
    resource: dict[str, Any] = {"resourceType": "DocumentReference", "status": "current"}
    if rid:
        resource["id"] = rid
    if version:
        resource["meta"] = {"versionId": version}
    if attachment is None and text is not None:
        attachment = {"contentType": "text/plain", "data": b64(text.encode("utf-8"))}
    if attachment is not None:
        resource["content"] = [{"attachment": attachment}]
    resource.update(extra)
    return resource


def dumps(resource: Any) -> bytes:
    return json.dumps(resource).encode("utf-8")


def bad_messages(i: int, max_note_bytes: int) -> list[tuple[str, bytes | None]]:
    """One message of every unusable kind, with its expected ``medcorr.error.code``."""
    text = note_text(i, False, CANARY)
    return [
        ("NOT_JSON", f"DocumentReference {CANARY} {i}".encode()),
        ("NOT_UTF8", b'{"resourceType": "DocumentReference", "id": "\xff' + str(i).encode() + b'"}'),
        ("NOT_FHIR", dumps({"id": f"x{i}", "note": CANARY})),
        ("WRONG_RESOURCE_TYPE", dumps({"resourceType": "Patient", "id": f"p{i}"})),
        ("NO_CONTENT", dumps(docref(f"nc{i}", None, content=[]))),
        ("URL_ONLY", dumps(docref(f"url{i}", attachment={"contentType": "text/plain",
                                                         "url": f"https://ehr.example/Binary/{i}"}))),
        ("UNSUPPORTED_CONTENT_TYPE", dumps(docref(f"pdf{i}", attachment={"contentType": "application/pdf",
                                                                          "data": b64(b"%PDF-1.7 " + CANARY.encode())}))),
        ("UNSUPPORTED_CONTENT_TYPE", dumps(docref(f"png{i}", attachment={"contentType": "image/png",
                                                                          "data": b64(b"\x89PNG\r\n")}))),
        ("INVALID_BASE64", dumps(docref(f"b64{i}", attachment={"contentType": "text/plain", "data": f"%%{CANARY}%%"}))),
        ("EMPTY_NOTE", dumps(docref(f"empty{i}", "   \n  "))),
        ("NOTE_TOO_LARGE", dumps(docref(f"big{i}", (text + " ") * (max_note_bytes // len(text) + 1)))),
        ("INVALID_FHIR", dumps({"resourceType": "DocumentReference", "id": f"inv{i}",
                                "content": [{"attachment": {"contentType": "text/plain", "data": b64(text.encode())}}]})),
        ("TEXT_DECODE_ERROR", dumps(docref(f"latin{i}", attachment={"contentType": "text/plain",
                                                                     "data": b64(f"Caf\u00e9 {CANARY}".encode("latin-1"))}))),
        ("EMPTY_BUNDLE", dumps({"resourceType": "Bundle", "type": "collection"})),
        ("TOMBSTONE", None),
    ]


def good_message(i: int) -> tuple[str, bytes]:
    """A checkable note (plain, HTML, Latin-1 or without versionId); returns (DocumentReference id, bytes)."""
    rid = f"note-{i}"
    text = note_text(i, wrong=i % 3 == 0)
    kind = i % 10
    if kind == 7:
        html = f"<html><body><h2>Progress note</h2><p>{text}</p></body></html>"
        return rid, dumps(docref(rid, attachment={"contentType": "text/html", "data": b64(html.encode())}))
    if kind == 8:
        return rid, dumps(docref(rid, attachment={"contentType": "text/plain; charset=ISO-8859-1",
                                                  "data": b64((text + " Caf\u00e9.").encode("latin-1"))}))
    if kind == 9:
        return rid, dumps(docref(rid, text, version=None))
    return rid, dumps(docref(rid, text, subject={"reference": f"Patient/p{i % 50}"}))


def good_bundle(i: int) -> bytes:
    """A Bundle with two good DocumentReferences and one PDF-only entry."""
    return dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:b{i}-0", "resource": docref(f"bundle-{i}-0", note_text(i, False))},
        {"fullUrl": f"urn:uuid:b{i}-1", "resource": docref(f"bundle-{i}-1", attachment={
            "contentType": "application/pdf", "data": b64(b"%PDF")})},
        {"fullUrl": f"urn:uuid:b{i}-2", "resource": docref(f"bundle-{i}-2", note_text(i + 1, True))},
    ]})


# ----------------------------------------------------------------------------- helpers


def topics(broker: Broker, name: str) -> dict[str, str]:
    names = {"input": broker.unique(f"{name}-in"), "output": broker.unique(f"{name}-out"),
             "dlq": broker.unique(f"{name}-dlq")}
    broker.create_topics(*names.values(), partitions=3)
    return names


def config_for(broker: Broker, names: dict[str, str], group: str, **overrides: Any) -> StreamConfig:
    settings = {"bootstrap_servers": broker.bootstrap, "input_topic": names["input"], "output_topic": names["output"],
                "dead_letter_topic": names["dlq"], "group_id": group, "kafka": dict(CONSUMER_TIMEOUTS),
                "broker_timeout": 20.0}
    settings.update(overrides)
    return StreamConfig(**settings).validate()


def coords(record: Any) -> tuple[int, int, int | None]:
    headers = header_dict(record.headers)
    entry = headers.get("medcorr.source.entry")
    return int(headers["medcorr.source.partition"]), int(headers["medcorr.source.offset"]), (
        int(entry) if entry is not None else None)


def group_by_source(*record_lists: list[Any]) -> dict[tuple, list[Any]]:
    grouped: dict[tuple, list[Any]] = defaultdict(list)
    for records in record_lists:
        for record in records:
            grouped[coords(record)].append(record)
    return grouped


def stream_command(broker: Broker, names: dict[str, str], group: str, tmp_path: Path, *extra: str,
                   delay: float = 0.0, batch_size: int = 10) -> list[str]:
    """``python -m medcorr.stream ...`` with a TOML file carrying the pipeline and Kafka settings."""
    settings = pipeline_settings(delay)
    toml = tmp_path / f"stream-{group}.toml"
    lines = [f'pipeline_config = "{settings["pipeline_config"]}"'] if settings["pipeline_config"] else []
    lines += [f"code = {json.dumps(settings['code'])}",
             f"batch_size = {batch_size}",
             "[pipeline_overrides]"]
    lines += [f'"{key}" = {json.dumps(value)}' for key, value in settings["pipeline_overrides"].items()]
    lines += ["[kafka]"] + [f"{key} = {value}" for key, value in CONSUMER_TIMEOUTS.items()]
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [sys.executable, "-m", "medcorr.stream", "--config", str(toml), "--bootstrap-servers", broker.bootstrap,
            "--input-topic", names["input"], "--output-topic", names["output"], "--dead-letter-topic", names["dlq"],
            "--group-id", group, *extra]


def start(command: list[str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    try:
        return subprocess.Popen(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        handle.close()


def wait_for_log(log: Path, needle: str, count: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count(needle) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"stream exited early ({process.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {count}x {needle!r} within {timeout}s:\n{log.read_text()[-3000:]}")


def summary_of(log: Path) -> dict[str, int]:
    line = [l for l in log.read_text(errors="replace").splitlines() if "stopped (" in l][-1]
    return {k: int(v) for k, v in (part.split("=") for part in line.split(": ", 2)[-1].split() if "=" in part)}


def produce_good(broker: Broker, topic: str, count: int) -> list[Any]:
    return broker.produce(topic, [(f"note-{i}".encode(), good_message(i)[1]) for i in range(count)])


# ----------------------------------------------------------------------------- tests


def test_mixed_stream_every_input_gives_exactly_one_record(kafka_broker, real_nlp):
    """1,000 messages: clean and error notes, Bundles, every unusable kind, pipeline crashes."""
    names = topics(kafka_broker, "mixed")
    max_note_bytes = 4096
    messages: list[tuple[str, Any, bytes | None]] = []  # (kind, expectation, value)
    bad_round = 0
    i = 0
    while len(messages) < 1000:
        slot = len(messages) % 50
        if slot < 15:
            for code, value in bad_messages(bad_round, max_note_bytes)[slot:slot + 1]:
                messages.append(("bad", code, value))
            if slot == 14:
                bad_round += 1
        elif slot == 15:
            messages.append(("bundle", None, good_bundle(i)))
        elif slot == 16 and len(messages) % 250 == 16:
            messages.append(("crash", "PIPELINE_ERROR", dumps(docref(f"crash-{i}", note_text(i, False, CRASH_MARKER)))))
        else:
            rid, value = good_message(i)
            messages.append(("good", rid, value))
        i += 1
    sent = kafka_broker.produce(names["input"], [(f"{kind}-{n}".encode(), value)
                                                 for n, (kind, _, value) in enumerate(messages)])
    expected = {(meta.partition, meta.offset): message for meta, message in zip(sent, messages)}

    metrics = StreamMetrics()
    server = start_metrics_server(metrics, "127.0.0.1", 0)
    config = config_for(kafka_broker, names, kafka_broker.unique("mixed"), max_messages=1000, batch_size=64,
                        max_note_bytes=max_note_bytes)
    started = time.monotonic()
    code = StreamProcessor(config, CrashOn(real_nlp), metrics=metrics).run()
    elapsed = time.monotonic() - started
    try:
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert code == EXIT_OK

    n_bundle = sum(1 for kind, _, _ in messages if kind == "bundle")
    n_output = sum(1 for kind, _, _ in messages if kind == "good") + 2 * n_bundle
    n_dlq = sum(1 for kind, _, _ in messages if kind in ("bad", "crash")) + n_bundle
    outputs = kafka_broker.read_all(names["output"], expected=n_output)
    dead = kafka_broker.read_all(names["dlq"], expected=n_dlq)
    grouped = group_by_source(outputs, dead)
    output_ids = {id(r) for r in outputs}

    # exactly one record per input (per entry for Bundles), nothing missing, nothing extra
    wanted: set[tuple] = set()
    for (partition, offset), (kind, _, _) in expected.items():
        if kind == "bundle":
            wanted |= {(partition, offset, entry) for entry in range(3)}
        else:
            wanted.add((partition, offset, None))
    assert set(grouped) == wanted
    assert [key for key, records in grouped.items() if len(records) != 1] == []

    for key, (record,) in grouped.items():
        kind, expectation, value = expected[key[:2]]
        headers = header_dict(record.headers)
        is_output = id(record) in output_ids
        if kind == "good" or (kind == "bundle" and key[2] in (0, 2)):
            assert is_output, (kind, headers.get("medcorr.error.code"), headers.get("medcorr.error.message"))
            bundle = json.loads(record.value)
            if kind == "good":
                assert record.key == expectation.encode()
            verdict = bundle_verdict(bundle)
            assert verdict.get("flag") == {"true": True, "false": False, "unjudged": None}[headers["medcorr.verdict.flag"]]
            assert verdict["status"] == headers["medcorr.status"]
            assert len(bundle.get("entry", [])) == int(headers["medcorr.findings"])
            assert headers["medcorr.model.version"] == verdict["modelVersion"] != ""
        else:
            assert not is_output
            want = expectation if kind != "bundle" else "UNSUPPORTED_CONTENT_TYPE"
            assert headers["medcorr.error.code"] == want, headers
            assert record.value == value  # original bytes (None for the tombstone)
            assert headers["__streams.errors.topic"] == names["input"]
            assert (int(headers["__streams.errors.partition"]), int(headers["__streams.errors.offset"])) == key[:2]
            assert headers["__streams.errors.exception"]
    # output Bundles validate as R4 FHIR
    from fhir.resources.R4B.bundle import Bundle

    for record in outputs[:50]:
        Bundle.model_validate(json.loads(record.value))

    # all offsets committed
    committed = kafka_broker.committed(config.group_id, names["input"])
    per_partition = Counter(partition for partition, _ in expected)
    assert committed == dict(per_partition)

    # metrics agree with the topics
    lines = scraped.splitlines()
    assert f"medcorr_stream_notes_processed_total {len(outputs)}" in lines
    assert f"medcorr_stream_note_latency_seconds_count {len(outputs)}" in lines
    assert sum(float(l.split()[-1]) for l in lines if l.startswith("medcorr_stream_dead_lettered_total{")) == len(dead)
    assert all(l.endswith(" 0") for l in lines if l.startswith("medcorr_stream_consumer_lag{"))

    # the verdicts through the broker equal offline nlp.pipe on the same notes (sample)
    sample = [(i, note_text(i, wrong=i % 3 == 0)) for i in range(17, 200) if i % 10 < 7][:60]
    offline = [verdict_of(doc) for doc in real_nlp.pipe([text for _, text in sample])]
    by_id = {record.key.decode(): json.loads(record.value) for record in outputs if record.key}
    compared = 0
    for (i, _), verdict in zip(sample, offline):
        bundle = by_id.get(f"note-{i}")
        if bundle is None:
            continue
        through_broker = bundle_verdict(bundle)
        assert through_broker["status"] == verdict.status.value and through_broker["claims"] == len(verdict.claims)
        assert through_broker.get("flag") == verdict.flag and through_broker.get("score") == verdict.score
        compared += 1
    assert compared >= 30
    print(f"\nmixed stream: {len(messages)} messages, {len(outputs)} outputs, {len(dead)} dead letters in {elapsed:.1f}s")


def test_r5_bundle_output_through_the_broker(kafka_broker, nlp):
    from fhir.resources.bundle import Bundle

    names = topics(kafka_broker, "r5")
    kafka_broker.produce(names["input"], [(None, dumps(docref(f"r5-{i}", note_text(i, i % 2 == 0)))) for i in range(6)])
    config = config_for(kafka_broker, names, kafka_broker.unique("r5"), max_messages=6, fhir_version="R5")
    assert StreamProcessor(config, nlp).run() == EXIT_OK
    outputs = kafka_broker.read_all(names["output"], expected=6)
    assert sorted(r.key for r in outputs) == sorted(f"r5-{i}".encode() for i in range(6))
    for record in outputs:
        assert header_dict(record.headers)["medcorr.fhir.version"] == "R5"
        Bundle.model_validate(json.loads(record.value))


def test_kill_9_and_restart_loses_nothing(kafka_broker, tmp_path):
    names = topics(kafka_broker, "kill")
    group = kafka_broker.unique("kill")
    total = 300
    produced = produce_good(kafka_broker, names["input"], total)
    log = tmp_path / "first.log"
    command = stream_command(kafka_broker, names, group, tmp_path, "--log-level", "DEBUG", delay=0.01)
    process = start(command, log)
    wait_for_log(log, "batch committed", 5, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    committed_at_kill = kafka_broker.committed(group, names["input"])
    assert 0 < sum(committed_at_kill.values()) < total, committed_at_kill

    second = tmp_path / "second.log"
    restarted = start(command + ["--idle-timeout", "2"], second)
    assert restarted.wait(timeout=120) == 0, second.read_text()[-3000:]

    outputs = kafka_broker.read_all(names["output"], expected=total)
    grouped = group_by_source(outputs, kafka_broker.read_all(names["dlq"], idle=0.5))
    assert set(grouped) == {(m.partition, m.offset, None) for m in produced}  # nothing missing
    duplicates = {key: records for key, records in grouped.items() if len(records) > 1}
    for (partition, offset, _), records in duplicates.items():
        assert offset >= committed_at_kill.get(partition, 0), "committed work was redone"
        assert len({r.value for r in records}) == 1  # a redelivered note gives the identical Bundle
        assert len({header_dict(r.headers)["medcorr.idempotency.key"] for r in records}) == 1
    assert kafka_broker.committed(group, names["input"]) == dict(Counter(m.partition for m in produced))
    print(f"\nkill -9: committed at kill {committed_at_kill}, {len(duplicates)} duplicates (uncommitted work)")


class SimulatedCrash(BaseException):
    """Stands for the process dying between "outputs acknowledged" and "offsets committed"."""


class CrashBeforeCommit(StreamProcessor):
    """Dies right before committing its ``crash_on``-th batch (outputs already on the topics).

    A dead process commits nothing more, so the commit-on-revoke of the shutdown path is switched off too.
    """

    crash_on = 3
    crashed = False

    def _commit_pending(self, final: bool = False) -> None:
        if self.crashed:
            return
        if not final and self.summary.batches + 1 == self.crash_on:
            self.crashed = True
            raise SimulatedCrash()
        super()._commit_pending(final)


def test_crash_after_produce_before_commit_redelivers_identical_records(kafka_broker, nlp):
    names = topics(kafka_broker, "dup")
    group = kafka_broker.unique("dup")
    produced = produce_good(kafka_broker, names["input"], 60)
    config = config_for(kafka_broker, names, group, batch_size=10, idle_timeout=2.0)
    first = CrashBeforeCommit(config, nlp)
    with pytest.raises(SimulatedCrash):
        first.run()
    committed_at_crash = kafka_broker.committed(group, names["input"])
    assert sum(committed_at_crash.values()) == 20  # two batches committed, the third produced but not committed
    assert StreamProcessor(config, nlp).run() == EXIT_OK
    grouped = group_by_source(kafka_broker.read_all(names["output"], expected=70))
    assert set(grouped) == {(m.partition, m.offset, None) for m in produced}
    duplicates = {key: records for key, records in grouped.items() if len(records) > 1}
    assert len(duplicates) == 10  # exactly the uncommitted batch, once more
    for (partition, offset, _), records in duplicates.items():
        assert offset >= committed_at_crash[partition]
        assert len(records) == 2 and records[0].value == records[1].value and records[0].key == records[1].key
        assert header_dict(records[0].headers) == header_dict(records[1].headers)


def test_sigterm_finishes_batch_commits_and_exits_0(kafka_broker, tmp_path):
    names = topics(kafka_broker, "term")
    group = kafka_broker.unique("term")
    total = 300
    produce_good(kafka_broker, names["input"], total)
    log = tmp_path / "term.log"
    process = start(stream_command(kafka_broker, names, group, tmp_path, "--log-level", "DEBUG", delay=0.01), log)
    wait_for_log(log, "batch committed", 3, process)
    sent_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=15)
    took = time.monotonic() - sent_at
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert took < 10
    assert "SIGTERM received" in text
    committed = kafka_broker.committed(group, names["input"])
    done = sum(committed.values())
    assert 0 < done < total  # stopped mid-stream
    records = kafka_broker.read_all(names["output"], expected=done) + kafka_broker.read_all(names["dlq"], idle=0.5)
    grouped = group_by_source(records)
    # everything produced was committed, and everything committed was produced exactly once
    assert set(grouped) == {(p, o, None) for p, end in committed.items() for o in range(end)}
    assert all(len(v) == 1 for v in grouped.values())
    assert summary_of(log)["messages"] == done
    print(f"\nSIGTERM: exit 0 after {took:.2f}s, {done} messages committed")


def test_two_consumers_in_one_group_share_the_work(kafka_broker, tmp_path):
    names = topics(kafka_broker, "pair")
    group = kafka_broker.unique("pair")
    total = 300
    produced = produce_good(kafka_broker, names["input"], total)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = [start(stream_command(kafka_broker, names, group, tmp_path, "--idle-timeout", "3", delay=0.02), log)
                 for log in logs]
    for process, log in zip(processes, logs):
        assert process.wait(timeout=150) == 0, log.read_text()[-3000:]
    summaries = [summary_of(log) for log in logs]
    assert all(s["messages"] > 0 for s in summaries), summaries
    outputs = kafka_broker.read_all(names["output"], expected=total)
    grouped = group_by_source(outputs)
    assert set(grouped) == {(m.partition, m.offset, None) for m in produced}
    duplicates = sum(len(v) - 1 for v in grouped.values())
    assert sum(s["messages"] for s in summaries) == total + duplicates
    assert kafka_broker.committed(group, names["input"]) == dict(Counter(m.partition for m in produced))
    print(f"\ntwo consumers: {[s['messages'] for s in summaries]} messages, {duplicates} duplicates")


def test_canary_note_text_never_reaches_the_logs(kafka_broker, tmp_path):
    names = topics(kafka_broker, "canary")
    max_note_bytes = 2048
    values = [dumps(docref(f"canary-{i}", note_text(i, i % 2 == 0, CANARY))) for i in range(6)]
    values.append(dumps(docref("canary-html", attachment={"contentType": "text/html", "data": b64(
        f"<p>{note_text(1, True, CANARY)}</p>".encode())})))
    values += [value for _, value in bad_messages(0, max_note_bytes)]
    if PIPELINE == "fake":
        values.append(dumps(docref("canary-crash", note_text(2, False, f"{CANARY} {CRASH_MARKER}"))))
    kafka_broker.produce(names["input"], [(b"key", value) for value in values])
    log = tmp_path / "canary.log"
    process = start(stream_command(kafka_broker, names, kafka_broker.unique("canary"), tmp_path, "--log-level", "DEBUG",
                                   "--max-note-bytes", str(max_note_bytes), "--max-messages", str(len(values))), log)
    assert process.wait(timeout=120) == 0, log.read_text()[-3000:]
    text = log.read_text(errors="replace")
    assert text.count(" DEBUG medcorr.stream: checked ") == 7  # DEBUG logging was on, notes were processed
    assert "dead-lettered" in text
    assert CANARY not in text
    outputs = kafka_broker.read_all(names["output"], expected=7)
    assert len(outputs) == 7


def test_broker_unreachable_at_start_exits_3_after_deadline(nlp, caplog):
    from kafka_broker import free_port

    config = StreamConfig(bootstrap_servers=f"127.0.0.1:{free_port()}", broker_timeout=4.0,
                          kafka=dict(CONSUMER_TIMEOUTS)).validate()
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="medcorr.stream"):
        code = StreamProcessor(config, nlp).run()
    took = time.monotonic() - started
    assert code == EXIT_BROKER
    assert 3.0 <= took < 15.0
    messages = [r.getMessage() for r in caplog.records if r.name == "medcorr.stream"]
    retries = [m for m in messages if "not reachable" in m]
    assert 1 <= len(retries) <= 5  # retried with backoff, not a busy loop
    assert any("unreachable" in m and "giving up" in m for m in messages)


def test_broker_lost_during_run_exits_3_after_deadline(kafka_broker_factory, nlp, caplog):
    broker = kafka_broker_factory()
    names = topics(broker, "lost")
    produce_good(broker, names["input"], 12)
    config = config_for(broker, names, broker.unique("lost"), broker_timeout=5.0)
    processor = StreamProcessor(config, nlp)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", processor.run()))
    with caplog.at_level("INFO", logger="medcorr.stream"):
        thread.start()
        deadline = time.monotonic() + 60
        while processor.summary.messages < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert processor.summary.messages == 12
        broker.stop()
        killed = time.monotonic()
        thread.join(timeout=40)
    assert not thread.is_alive(), "the stream hangs after losing the broker"
    took = time.monotonic() - killed
    assert result["code"] == EXIT_BROKER
    assert 4.0 <= took < 30.0
    assert any("no contact with broker" in r.getMessage() for r in caplog.records)


def test_topic_setup_is_idempotent(kafka_broker):
    from medcorr.stream.admin import create_topics, describe_topics

    names = {"input": kafka_broker.unique("setup-in"), "output": kafka_broker.unique("setup-out"),
             "dlq": kafka_broker.unique("setup-dlq")}
    command = [str(ROOT / "connectors" / "create-topics.sh"), "--bootstrap-servers", kafka_broker.bootstrap,
               "--input-topic", names["input"], "--output-topic", names["output"], "--dead-letter-topic", names["dlq"],
               "--partitions", "4"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [names["input"], "created", names["output"], "created", names["dlq"], "created"]
    config = StreamConfig(bootstrap_servers=kafka_broker.bootstrap, input_topic=names["input"],
                          output_topic=names["output"], dead_letter_topic=names["dlq"]).validate()
    assert create_topics(config, partitions=4) == {name: "exists" for name in names.values()}
    assert describe_topics(config) == {name: 4 for name in names.values()}
