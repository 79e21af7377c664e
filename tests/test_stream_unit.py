"""medcorr stream without a broker: settings, record layout, metrics, and the commit discipline of the loop
(with in-memory stand-ins for the kafka-python clients)."""
from __future__ import annotations

import base64
import json
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from medcorr.finding import ErrorType, Finding, Role, Verdict
from medcorr.stream import records
from medcorr.stream.config import ConfigError, StreamConfig, from_env, load_config, parse_kafka_options
from medcorr.stream.consumer import EXIT_BROKER, EXIT_OK, EXIT_PIPELINE, StreamProcessor
from medcorr.stream.metrics import StreamMetrics, start_metrics_server

sys.path.insert(0, str(Path(__file__).parent))
from stream_fake_pipeline import CRASH_MARKER, FAKE_SOURCE, fake_nlp  # noqa: E402


# ----------------------------------------------------------------------------- settings


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stream.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_precedence_cli_over_env_over_toml_over_defaults(tmp_path):
    toml = write_toml(tmp_path, """
bootstrap_servers = "toml:9092"
input_topic = "toml-notes"
output_topic = "toml-out"
batch_size = 8
[kafka]
security_protocol = "SSL"
ssl_check_hostname = false
request_timeout_ms = 40000
""")
    env = {"MEDCORR_INPUT_TOPIC": "env-notes", "MEDCORR_BATCH_SIZE": "16", "MEDCORR_KAFKA_REQUEST_TIMEOUT_MS": "50000",
           "MEDCORR_GROUP_ID": "env-group"}
    cli = {"input_topic": "cli-notes", "idle_timeout": None, "kafka": parse_kafka_options(["request_timeout_ms=60000"])}
    config = load_config(cli, config_path=toml, environ=env)
    assert config.bootstrap_servers == "toml:9092"  # TOML only
    assert config.output_topic == "toml-out"
    assert config.input_topic == "cli-notes"  # CLI beats env and TOML
    assert config.group_id == "env-group"  # env beats default
    assert config.batch_size == 16  # env beats TOML
    assert config.dead_letter_topic == "medcorr.dlq"  # default
    assert config.idle_timeout is None  # an unset CLI option overrides nothing
    assert config.kafka == {"security_protocol": "SSL", "ssl_check_hostname": False, "request_timeout_ms": 60000}
    assert config.consumer_settings()["ssl_check_hostname"] is False


def test_config_file_from_environment_and_kafka_subtables(tmp_path):
    toml = write_toml(tmp_path, """
[stream]
bootstrap_servers = ["a:9093", "b:9093"]
[kafka.consumer]
max_poll_interval_ms = 600000
[kafka.producer]
compression_type = "gzip"
""")
    config = load_config({}, environ={"MEDCORR_CONFIG": str(toml)})
    assert config.bootstrap_servers == "a:9093,b:9093"
    assert config.consumer_settings() == {"max_poll_interval_ms": 600000}
    assert config.producer_settings() == {"compression_type": "gzip"}


def test_secrets_only_from_environment_or_file(tmp_path):
    with pytest.raises(ConfigError, match="MEDCORR_KAFKA_SASL_PLAIN_PASSWORD"):
        load_config({"bootstrap_servers": "x:1"}, config_path=write_toml(tmp_path, '[kafka]\nsasl_plain_password = "p"\n'),
                    environ={})
    with pytest.raises(ConfigError, match="secret"):
        parse_kafka_options(["sasl_plain_password=p"])
    env = {"MEDCORR_BOOTSTRAP_SERVERS": "x:1", "MEDCORR_KAFKA_SASL_PLAIN_PASSWORD": "s3cret",
           "MEDCORR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "MEDCORR_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    config = load_config({}, environ=env)
    assert config.kafka["sasl_plain_password"] == "s3cret"
    assert config.redacted()["kafka"]["sasl_plain_password"] == "***"
    assert "s3cret" not in json.dumps(config.redacted())
    secret_file = tmp_path / "password"
    secret_file.write_text("from-file\n")
    toml = write_toml(tmp_path, f'bootstrap_servers = "x:1"\n[kafka]\nsasl_plain_password_file = "{secret_file}"\n')
    assert load_config({}, config_path=toml, environ={}).kafka["sasl_plain_password"] == "from-file"


@pytest.mark.parametrize("toml,match", [
    ('bootstrap_servers = "x:1"\nbogus = 1\n', "unknown setting"),
    ('bootstrap_servers = "x:1"\n[kafka]\nno_such_option = 1\n', "unknown kafka-python setting"),
    ('bootstrap_servers = "x:1"\n[kafka]\nenable_auto_commit = true\n', "set by medcorr stream"),
    ('bootstrap_servers = "x:1"\n[kafka]\nacks = 0\n', "acks=0"),
    ('bootstrap_servers = "x:1"\nfhir_version = "STU3"\n', "R4 or R5"),
    ('bootstrap_servers = "x:1"\noutput_validation = "none"\n', "output_validation must be one of"),
    ('bootstrap_servers = "x:1"\noutput_topic = "notes"\n', "different topics"),
    ('batch_size = "many"\n', "batch_size"),
    ('input_topic = "n"\n', "bootstrap_servers is required"),
])
def test_invalid_settings_are_refused_with_the_setting_named(tmp_path, toml, match):
    with pytest.raises(ConfigError, match=match):
        load_config({}, config_path=write_toml(tmp_path, toml), environ={})


def test_env_values_are_typed():
    values = from_env({"MEDCORR_IDLE_TIMEOUT": "2.5", "MEDCORR_MAX_MESSAGES": "10", "MEDCORR_KAFKA_SSL_CHECK_HOSTNAME": "no",
                       "MEDCORR_KAFKA_ACKS": "all", "UNRELATED": "x"})
    assert values == {"idle_timeout": 2.5, "max_messages": 10, "kafka": {"ssl_check_hostname": False, "acks": "all"}}
    with pytest.raises(ConfigError, match="max_messages"):
        from_env({"MEDCORR_MAX_MESSAGES": "ten"})


def test_stream_command_is_registered_in_the_medcorr_cli(capsys):
    from medcorr.cli import build_parser

    args = build_parser().parse_args(["stream", "--bootstrap-servers", "h:1", "--fhir-version", "r5", "--print-config"])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["bootstrap_servers"] == "h:1" and printed["fhir_version"] == "R5"


# ----------------------------------------------------------------------------- records


def test_idempotency_key_prefers_versioned_document_reference():
    from medcorr.fhir import SourceRef

    coords = records.SourceCoordinates("notes", 2, 41)
    assert records.idempotency_key(SourceRef("d", "7"), coords) == "DocumentReference/d/_history/7"
    assert records.idempotency_key(SourceRef("d", None), coords) == "kafka:notes/2/41"
    assert records.idempotency_key(None, records.SourceCoordinates("notes", 2, 41, 3, 5)) == "kafka:notes/2/41/3"


def test_dead_letter_record_keeps_original_and_uses_kip1034_headers():
    secret = "".join(["pa", "tient ", "sec", "ret"])  # built at run time: not in any source line
    try:
        raise ValueError(f"boom with {secret}")
    except ValueError as error:
        caught = error
    out = records.dead_letter_record(
        "dlq", b"key", b"original bytes", [("trace", b"abc")], records.SourceCoordinates("notes", 1, 9, 0, 2), caught,
        source=None, medcorr_version="0.1.0", model_version="m", code="PIPELINE_ERROR",
    )
    headers = records.header_dict(out.headers)
    assert (out.topic, out.key, out.value) == ("dlq", b"key", b"original bytes")
    assert headers["trace"] == "abc"
    assert headers["__streams.errors.exception"] == "ValueError"
    assert headers["__streams.errors.topic"] == "notes"
    assert headers["__streams.errors.partition"] == "1"
    assert headers["__streams.errors.offset"] == "9"
    assert headers["medcorr.error.code"] == "PIPELINE_ERROR"
    assert headers["medcorr.source.entry"] == "0" and headers["medcorr.source.entries"] == "2"
    stack = headers["__streams.errors.stacktrace"]
    assert "test_dead_letter_record_keeps_original" in stack and secret not in stack
    assert headers["__streams.errors.message"] == f"boom with {secret}"  # the DLQ holds the note anyway


# ----------------------------------------------------------------------------- metrics


def test_metrics_text_format_and_http_endpoint():
    metrics = StreamMetrics()
    metrics.processed.inc(3)
    metrics.dead_lettered.inc(code="NOT_JSON")
    metrics.lag.set(5, topic="notes", partition="0")
    metrics.latency.observe(0.02, count=2)
    metrics.latency.observe(100.0)
    server = start_metrics_server(metrics, "127.0.0.1", 0)
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status == 200
    finally:
        server.shutdown()
        server.server_close()
    lines = body.splitlines()
    assert "# TYPE medcorr_stream_notes_processed_total counter" in lines
    assert "medcorr_stream_notes_processed_total 3" in lines
    assert 'medcorr_stream_dead_lettered_total{code="NOT_JSON"} 1' in lines
    assert 'medcorr_stream_consumer_lag{partition="0",topic="notes"} 5' in lines
    assert 'medcorr_stream_note_latency_seconds_bucket{le="0.01"} 0' in lines
    assert 'medcorr_stream_note_latency_seconds_bucket{le="0.025"} 2' in lines
    assert 'medcorr_stream_note_latency_seconds_bucket{le="60"} 2' in lines
    assert 'medcorr_stream_note_latency_seconds_bucket{le="+Inf"} 3' in lines
    assert "medcorr_stream_note_latency_seconds_count 3" in lines


# ----------------------------------------------------------------------------- the loop, with fake clients


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list = field(default_factory=list)
    timestamp: int = 0


class FakeFuture:
    def __init__(self, error: BaseException | None) -> None:
        self.is_done = True
        self.exception = error

    def succeeded(self) -> bool:
        return self.exception is None


class FakeKafka:
    """One input topic with fixed batches, shared by a fake consumer and producer; logs every call."""

    def __init__(self, batches: list[list[Rec]], fail_topic: str | None = None) -> None:
        self.batches = list(batches)
        self.events: list[tuple] = []
        self.sent: list[tuple] = []
        self.fail_topic = fail_topic
        self.processor: StreamProcessor | None = None
        self.listener: Any = None
        self.commit_errors: list[BaseException] = []  # raised by the next commits, in order
        self.revoke_before_poll: set[int] = set()  # poll numbers that start with a rebalance
        self.too_large_topic: str | None = None  # records with a value on this topic are "too large"
        self.polls = 0

    def consumer(self, **settings: Any) -> "FakeKafka":
        self.events.append(("consumer", settings))
        return self

    def producer(self, **settings: Any) -> "FakeKafka":
        self.events.append(("producer", settings))
        return self

    # consumer API
    def subscribe(self, topics, listener=None):
        from kafka import TopicPartition

        self.listener = listener
        listener.on_partitions_assigned([TopicPartition("notes", 0)])

    def poll(self, timeout_ms=0, max_records=None):
        from kafka import TopicPartition

        self.polls += 1
        if self.polls in self.revoke_before_poll:
            self.events.append(("rebalance",))
            self.listener.on_partitions_revoked([TopicPartition("notes", 0)])
            self.listener.on_partitions_assigned([TopicPartition("notes", 0)])
            self.events.append(("reassigned",))
        if not self.batches:
            self.processor.stop("test: input exhausted")
            return {}
        batch = self.batches.pop(0)
        self.events.append(("poll", [r.offset for r in batch]))
        return {TopicPartition("notes", 0): batch}

    def commit(self, offsets, timeout_ms=None):
        if self.commit_errors:
            self.events.append(("commit-failed",))
            raise self.commit_errors.pop(0)
        self.events.append(("commit", {tp.partition: meta.offset for tp, meta in offsets.items()}))

    def metrics(self):
        return {"consumer-coordinator-metrics": {"last-heartbeat-seconds-ago": 0.1}}

    def assignment(self):
        return set()

    # producer API
    def send(self, topic, key=None, value=None, headers=None):
        self.events.append(("send", topic))
        if topic == self.too_large_topic and value is not None:
            from kafka.errors import MessageSizeTooLargeError

            return FakeFuture(MessageSizeTooLargeError("record too large"))
        self.sent.append((topic, key, value, records.header_dict(headers)))
        return FakeFuture(RuntimeError("broker said no") if topic == self.fail_topic else None)

    def flush(self, timeout=None):
        self.events.append(("flush",))

    def close(self, *args, **kwargs):
        self.events.append(("close",))


def note_message(offset: int, text: str) -> Rec:
    resource = {"resourceType": "DocumentReference", "id": f"d{offset}", "meta": {"versionId": "1"}, "status": "current",
                "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}]}
    return Rec("notes", 0, offset, f"d{offset}".encode(), json.dumps(resource).encode())


def run_fake(batches, nlp=None, fail_topic=None, setup=None, **config) -> tuple[int, FakeKafka, StreamProcessor]:
    kafka = FakeKafka(batches, fail_topic)
    if setup is not None:
        setup(kafka)
    settings = StreamConfig(bootstrap_servers="fake:9092", **config).validate()
    processor = StreamProcessor(settings, nlp or fake_nlp(), consumer_factory=kafka.consumer,
                                producer_factory=kafka.producer)
    kafka.processor = processor
    return processor.run(), kafka, processor


def test_commit_only_after_flush_and_consumer_settings():
    batches = [[note_message(0, "Flu. Given amoxicillin."), note_message(1, "All well."),
                Rec("notes", 0, 2, None, b"not json")],
               [note_message(3, "Fine.")]]
    code, kafka, processor = run_fake(batches, batch_size=3)
    assert code == EXIT_OK
    consumer_settings = next(s for name, s in ((e[0], e[1]) for e in kafka.events if len(e) > 1) if name == "consumer")
    assert consumer_settings["enable_auto_commit"] is False
    kinds = [e[0] for e in kafka.events if e[0] in ("poll", "send", "flush", "commit")]
    assert kinds == ["poll", "send", "send", "send", "flush", "commit", "poll", "send", "flush", "commit"]
    commits = [e[1] for e in kafka.events if e[0] == "commit"]
    assert commits == [{0: 3}, {0: 4}]
    topics = [s[0] for s in kafka.sent]
    assert topics == ["medcorr.findings", "medcorr.findings", "medcorr.dlq", "medcorr.findings"]
    flagged = kafka.sent[0]
    assert flagged[1] == b"d0" and flagged[3]["medcorr.verdict.flag"] == "true"
    assert flagged[3]["medcorr.model.version"] == "fake-1"
    assert processor.summary.messages == 4 and processor.summary.flagged == 1
    assert processor.metrics.processed.total() == 3 and processor.metrics.dead_lettered.value(code="NOT_JSON") == 1


def test_failed_send_means_no_commit_and_exit_3():
    batches = [[note_message(0, "Fine."), Rec("notes", 0, 1, None, b"{")]]
    code, kafka, processor = run_fake(batches, fail_topic="medcorr.dlq")
    assert code == EXIT_BROKER
    assert not [e for e in kafka.events if e[0] == "commit"]
    assert processor.metrics.produce_failures.total() == 1
    assert processor.summary.messages == 0  # nothing counted as done


def test_failed_send_of_a_batch_finished_inside_the_note_feed_stops_with_exit_3(caplog):
    # a batch of unusable messages only is finished while the pipeline pulls notes (no note goes in):
    # its failed send must stop the loop as a delivery failure, not pass for a pipeline exception
    batches = [[Rec("notes", 0, 0, None, b"{")], [note_message(1, "Fine.")]]
    with caplog.at_level("WARNING", logger="medcorr.stream"):
        code, kafka, processor = run_fake(batches, nlp=fake_nlp(lookahead=True), fail_topic="medcorr.dlq")
    assert code == EXIT_BROKER
    assert not any("pipeline raised" in r.getMessage() for r in caplog.records)
    assert not [e for e in kafka.events if e[0] == "commit"]
    assert processor.metrics.pipeline_errors.total() == 0 and processor.summary.messages == 0


def test_pipeline_exception_dead_letters_that_note_only():
    batches = [[note_message(0, "Fine."), note_message(1, f"Bad {CRASH_MARKER} note."), note_message(2, "Amoxicillin.")]]
    code, kafka, _ = run_fake(batches)
    assert code == EXIT_OK
    by_offset = {int(s[3]["medcorr.source.offset"]): s for s in kafka.sent}
    assert by_offset[0][0] == "medcorr.findings" and by_offset[2][0] == "medcorr.findings"
    assert by_offset[1][0] == "medcorr.dlq"
    assert by_offset[1][3]["medcorr.error.code"] == "PIPELINE_ERROR"
    assert by_offset[1][3]["__streams.errors.exception"] == "RuntimeError"
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 3}]


def test_output_that_fails_the_profile_is_dead_lettered_as_mapping_error(monkeypatch):
    from medcorr.stream import consumer

    real = consumer.verdict_of

    def broken_score(doc):
        verdict = real(doc)
        return Verdict(status=verdict.status, flag=verdict.flag, score=float("nan"), source=verdict.source,
                       error_sentence=verdict.error_sentence, findings=verdict.findings) if "Bad" in doc.text else verdict

    monkeypatch.setattr(consumer, "verdict_of", broken_score)
    batches = [[note_message(0, "Fine."), note_message(1, "Bad score note."), note_message(2, "Amoxicillin.")]]
    code, kafka, _ = run_fake(batches)
    assert code == EXIT_OK
    by_offset = {int(s[3]["medcorr.source.offset"]): s for s in kafka.sent}
    assert by_offset[0][0] == by_offset[2][0] == "medcorr.findings"
    assert by_offset[1][0] == "medcorr.dlq" and by_offset[1][3]["medcorr.error.code"] == "MAPPING_ERROR"
    assert by_offset[1][3]["__streams.errors.exception"].endswith("OutputProfileError")
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 3}]


def test_broken_pipeline_stops_without_dead_lettering_everything():
    batches = [[note_message(i, f"{CRASH_MARKER} {i}") for i in range(5)]]
    code, kafka, _ = run_fake(batches, max_consecutive_pipeline_errors=3)
    assert code == EXIT_PIPELINE
    assert not kafka.sent and not [e for e in kafka.events if e[0] == "commit"]


def test_clean_and_flagged_outputs_are_valid_bundles_keyed_by_id():
    from fhir.resources.bundle import Bundle

    batches = [[note_message(5, "Given amoxicillin for influenza."), note_message(6, "Nothing wrong here.")]]
    code, kafka, _ = run_fake(batches, fhir_version="R5")
    assert code == EXIT_OK
    (flag_topic, flag_key, flag_value, flag_headers), (_, clean_key, clean_value, clean_headers) = kafka.sent
    flagged, clean = json.loads(flag_value), json.loads(clean_value)
    Bundle.model_validate(flagged)
    Bundle.model_validate(clean)
    assert flag_key == b"d5" and clean_key == b"d6"
    assert len(flagged["entry"]) == 1
    assert flagged["entry"][0]["resource"]["detail"] == "Given oseltamivir for influenza. (correction from fake verifier)"
    assert "entry" not in clean and clean_headers["medcorr.verdict.flag"] == "false"
    assert flag_headers["medcorr.idempotency.key"] == "DocumentReference/d5/_history/1"


@pytest.mark.parametrize("validation,class_checks", [("profile", 0), ("classes", 2)])
def test_output_validation_setting_picks_the_validator(monkeypatch, validation, class_checks):
    from medcorr import fhir

    checked = []
    real = fhir.validate_with_classes
    monkeypatch.setattr(fhir, "validate_with_classes", lambda bundle, version: checked.append(real(bundle, version)))
    batches = [[note_message(5, "Given amoxicillin for influenza."), note_message(6, "Nothing wrong here.")]]
    code, kafka, _ = run_fake(batches, output_validation=validation)
    assert code == EXIT_OK and len(kafka.sent) == 2
    assert len(checked) == class_checks


def test_model_version_defaults_to_unknown():
    import spacy

    from medcorr.stream.consumer import model_version_of

    assert model_version_of(spacy.blank("en")) == "unknown"
    assert model_version_of(fake_nlp()) == "fake-1"


def test_a_renamed_medcorr_pipe_gives_its_model_version_and_pipe_batches():
    import spacy

    from medcorr.stream.consumer import OVERLAP_PIPE_BATCH, model_version_of, pipe_batch_size

    nlp = spacy.blank("en")
    component = nlp.add_pipe("medcorr", name="note_errors")
    assert model_version_of(nlp) == component.model_version != "unknown"
    assert pipe_batch_size(nlp, 64) == (OVERLAP_PIPE_BATCH if component.detector.batch_size == 1 else 64)


def test_verdict_type_is_the_shared_model():
    # the fake pipeline stores the shared Verdict/Finding, read back through the real component's getter
    doc = fake_nlp()("Given amoxicillin.")
    assert isinstance(doc._.medcorr, Verdict)
    assert doc._.medcorr.findings[0] == Finding(6, 17, "amoxicillin", ErrorType.PHARMACOTHERAPY, 0.93, 0,
                                                Role.ERROR, correction="oseltamivir",
                                                corrected_sentence="Given oseltamivir.",
                                                correction_source=FAKE_SOURCE.name, evidence=[FAKE_SOURCE])


def test_offsets_left_by_a_rebalance_are_committed_on_revocation():
    from kafka.errors import RebalanceInProgressError

    def setup(kafka):
        kafka.commit_errors = [RebalanceInProgressError()]
        kafka.revoke_before_poll = {2}

    code, kafka, _ = run_fake([[note_message(0, "Fine."), note_message(1, "Fine too.")]], setup=setup)
    assert code == EXIT_OK
    kinds = [e[0] for e in kafka.events if e[0] in ("flush", "commit", "commit-failed", "rebalance", "reassigned")]
    assert kinds == ["flush", "commit-failed", "rebalance", "commit", "reassigned"]  # committed inside the revoke
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 2}]


def _kinds(kafka, wanted=("poll", "send", "flush", "commit")) -> list:
    return [e[0] if e[0] != "commit" else ("commit", e[1][0]) for e in kafka.events if e[0] in wanted]


def test_next_batch_is_polled_while_the_pipeline_holds_the_previous_and_commits_stay_in_order():
    batches = [[note_message(0, "Fine."), note_message(1, "Amoxicillin.")],
               [note_message(2, "Fine."), note_message(3, "Fine.")], [note_message(4, "Fine.")]]
    code, kafka, processor = run_fake(batches, nlp=fake_nlp(lookahead=True), batch_size=2)
    assert code == EXIT_OK
    kinds = _kinds(kafka)
    # batch 2 is polled (and fed) before batch 1 is delivered: the model never waits for a commit
    assert kinds[:2] == ["poll", "poll"]
    assert kinds.index("poll", 2) < kinds.index(("commit", 4))
    assert [k for k in kinds if isinstance(k, tuple)] == [("commit", 2), ("commit", 4), ("commit", 5)]
    for commit in (("commit", 2), ("commit", 4), ("commit", 5)):
        assert kinds[kinds.index(commit) - 1] == "flush"  # committed right after its outputs were acknowledged
    sent = [int(s[3]["medcorr.source.offset"]) for s in kafka.sent]
    assert sent == [0, 1, 2, 3, 4]
    assert processor.summary.messages == 5 and processor.summary.batches == 3 and processor.summary.flagged == 1


def test_unusable_batch_behind_an_unfinished_one_waits_its_turn():
    batches = [[note_message(0, "Fine."), note_message(1, "Fine.")],
               [Rec("notes", 0, 2, None, b"not json")], [note_message(3, "Fine.")]]
    code, kafka, processor = run_fake(batches, nlp=fake_nlp(lookahead=True), batch_size=2)
    assert code == EXIT_OK
    commits = [e[1] for e in kafka.events if e[0] == "commit"]
    assert commits == [{0: 2}, {0: 3}, {0: 4}]
    assert [(s[0], int(s[3]["medcorr.source.offset"])) for s in kafka.sent] == [
        ("medcorr.findings", 0), ("medcorr.findings", 1), ("medcorr.dlq", 2), ("medcorr.findings", 3)]


def test_pipeline_exception_in_a_burst_checks_the_notes_in_flight_one_by_one():
    batches = [[note_message(0, "Fine."), note_message(1, "Amoxicillin.")],
               [note_message(2, f"Bad {CRASH_MARKER} note."), note_message(3, "Fine.")]]
    code, kafka, processor = run_fake(batches, nlp=fake_nlp(lookahead=True), batch_size=2)
    assert code == EXIT_OK
    by_offset = {int(s[3]["medcorr.source.offset"]): s for s in kafka.sent}
    assert sorted(by_offset) == [0, 1, 2, 3]
    assert [by_offset[o][0] for o in range(4)] == ["medcorr.findings", "medcorr.findings", "medcorr.dlq",
                                                  "medcorr.findings"]
    assert by_offset[2][3]["medcorr.error.code"] == "PIPELINE_ERROR"
    assert by_offset[1][3]["medcorr.verdict.flag"] == "true"
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 2}, {0: 4}]
    assert processor.summary.dead_lettered == 1 and processor.summary.processed == 3


def test_partition_revoked_while_its_batch_is_in_flight_is_not_committed(caplog):
    def setup(kafka):
        kafka.revoke_before_poll = {2}  # the second poll comes while batch 1 is still in the pipeline

    batches = [[note_message(0, "Fine."), note_message(1, "Fine.")], [note_message(2, "Fine.")]]
    with caplog.at_level("INFO", logger="medcorr.stream"):
        code, kafka, processor = run_fake(batches, nlp=fake_nlp(lookahead=True), setup=setup, batch_size=2)
    assert code == EXIT_OK
    assert [int(s[3]["medcorr.source.offset"]) for s in kafka.sent] == [0, 1, 2]  # outputs still sent
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 3}]  # batch 1 alone never commits
    assert any("batches in flight lost partitions" in r.getMessage() for r in caplog.records)


def test_stop_inside_a_burst_finishes_the_batches_in_hand():
    batches = [[note_message(0, "Fine."), note_message(1, "Fine.")], [note_message(2, "Fine.")],
               [note_message(3, "Fine.")]]

    def setup(kafka):
        poll = kafka.poll

        def poll_then_sigterm(timeout_ms=0, max_records=None):
            result = poll(timeout_ms, max_records)
            if kafka.polls == 2:
                kafka.processor.stop("test: SIGTERM")
            return result

        kafka.poll = poll_then_sigterm

    code, kafka, _ = run_fake(batches, nlp=fake_nlp(lookahead=True), setup=setup, batch_size=2)
    assert code == EXIT_OK
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 2}, {0: 3}]  # both polled batches
    assert kafka.polls == 2  # nothing polled after the stop


def test_dead_letter_too_large_for_the_dlq_is_sent_without_its_value():
    def setup(kafka):
        kafka.too_large_topic = "medcorr.dlq"

    code, kafka, _ = run_fake([[Rec("notes", 0, 0, b"k", b"x" * 100), note_message(1, "Fine.")]], setup=setup)
    assert code == EXIT_OK
    dead = [s for s in kafka.sent if s[0] == "medcorr.dlq"]
    assert len(dead) == 1
    topic, key, value, headers = dead[0]
    assert key == b"k" and value is None
    assert headers["medcorr.dlq.value.omitted"] == "too-large" and headers["medcorr.error.code"] == "NOT_JSON"
    assert [e[1] for e in kafka.events if e[0] == "commit"] == [{0: 2}]


CONNECTORS = Path(__file__).resolve().parents[1] / "connectors"


def test_example_stream_toml_is_valid(tmp_path):
    secret = tmp_path / "kafka-password"
    secret.write_text("example")
    text = (CONNECTORS / "stream.toml").read_text().replace("/run/secrets/kafka-password", str(secret))
    config = load_config({}, config_path=write_toml(tmp_path, text), environ={})
    assert config.fhir_version == "R4" and config.metrics_port == 9464
    assert config.kafka["security_protocol"] == "SASL_SSL" and config.kafka["sasl_plain_password"] == "example"
    assert config.consumer_settings()["max_poll_interval_ms"] == 300000
    assert config.producer_settings()["compression_type"] == "gzip"


def test_published_code_system_matches_the_error_types():
    from medcorr.fhir import error_type_code_system

    published = json.loads((CONNECTORS / "fhir" / "CodeSystem-medcorr-error-type.json").read_text())
    generated = error_type_code_system("R4")
    published.pop("version"), generated.pop("version")
    assert published == generated


def test_warns_when_kafka_checksums_run_in_pure_python(monkeypatch, caplog):
    from kafka.record import util

    from medcorr.stream import consumer

    monkeypatch.setattr(util, "crc32c_c", None)
    with caplog.at_level("WARNING", logger=consumer.logger.name):
        consumer._warn_if_slow_checksums()
    assert "crc32c" in caplog.text
    caplog.clear()
    monkeypatch.setattr(util, "crc32c_c", lambda data: 0)
    with caplog.at_level("WARNING", logger=consumer.logger.name):
        consumer._warn_if_slow_checksums()
    assert caplog.text == ""


def test_crc32c_c_extension_is_installed():
    from kafka.record import util

    assert util.crc32c_c is not None, "kafka-python[crc32c] is a dependency; the C checksum module is missing"


def test_pipe_batches_inside_a_kafka_batch_follow_the_detector():
    from types import SimpleNamespace

    from medcorr.stream.consumer import OVERLAP_PIPE_BATCH, pipe_batch_size

    def nlp_with(batch_size: int | None) -> Any:
        pipes = {} if batch_size is None else {"medcorr": SimpleNamespace(detector=SimpleNamespace(batch_size=batch_size))}
        return SimpleNamespace(pipe_names=list(pipes), get_pipe=pipes.__getitem__)

    assert pipe_batch_size(nlp_with(1), 32) == OVERLAP_PIPE_BATCH  # one window per call: overlap inside the batch
    assert pipe_batch_size(nlp_with(1), 3) == 3
    assert pipe_batch_size(nlp_with(64), 32) == 32  # a batched (CUDA) detector keeps its calls full
    assert pipe_batch_size(nlp_with(None), 32) == 32  # not a medcorr pipeline
    assert pipe_batch_size(nlp_with(1), 0) == 1
