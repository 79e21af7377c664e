"""Topic setup for ``medcorr stream``: ``python -m medcorr.stream.admin create-topics``.

Creates the input, output and dead-letter topics named in the stream settings (same TOML / ``MEDCORR_*``
/ command-line sources, same Kafka security settings). Existing topics are left as they are (reported),
so the command is safe to re-run. ``describe`` prints partition counts. For trying the connector by hand,
``send FILE...`` produces files (e.g. the sample DocumentReference) to the input topic and ``read`` prints
the records of the output topic (``--topic dlq``: the dead letters), one value per line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from medcorr.stream.config import ConfigError, StreamConfig, load_config, parse_kafka_options

#: Topic settings applied at creation (override with --topic-config TOPIC_ROLE:KEY=VALUE).
DEFAULT_TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    "input": {},
    "output": {"cleanup.policy": "delete"},
    # dead letters hold the original notes: keep them long enough to be looked at, never compact them
    "dlq": {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)},
}


def admin_settings(config: StreamConfig) -> dict[str, Any]:
    """kafka-python ``KafkaAdminClient`` keyword arguments from the stream settings."""
    from kafka.admin import KafkaAdminClient

    settings = {k: v for k, v in config.kafka.items() if k in KafkaAdminClient.DEFAULT_CONFIG}
    settings["bootstrap_servers"] = [s.strip() for s in str(config.bootstrap_servers).split(",") if s.strip()]
    if config.client_id:
        settings["client_id"] = config.client_id
    return settings


def create_topics(
    config: StreamConfig,
    partitions: int = 6,
    replication_factor: int = 1,
    topic_configs: dict[str, dict[str, str]] | None = None,
    admin: Any = None,
) -> dict[str, str]:
    """Create the three topics; returns ``{topic: "created" | "exists"}``."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    configs = {role: dict(values) for role, values in DEFAULT_TOPIC_CONFIGS.items()}
    for role, values in (topic_configs or {}).items():
        configs.setdefault(role, {}).update(values)
    roles = {"input": config.input_topic, "output": config.output_topic, "dlq": config.dead_letter_topic}
    own_admin = admin is None
    admin = admin or KafkaAdminClient(**admin_settings(config))
    result: dict[str, str] = {}
    try:
        existing = set(admin.list_topics())
        for role, topic in roles.items():
            if topic in existing:
                result[topic] = "exists"
                continue
            new = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor,
                           topic_configs=configs.get(role) or {})
            try:
                admin.create_topics([new])
                result[topic] = "created"
            except TopicAlreadyExistsError:
                result[topic] = "exists"
    finally:
        if own_admin:
            admin.close()
    return result


def describe_topics(config: StreamConfig, admin: Any = None) -> dict[str, int | None]:
    """``{topic: number of partitions}`` for the three topics (None when missing)."""
    from kafka.admin import KafkaAdminClient

    own_admin = admin is None
    admin = admin or KafkaAdminClient(**admin_settings(config))
    try:
        topics = [config.input_topic, config.output_topic, config.dead_letter_topic]
        existing = set(admin.list_topics())
        described = {item["topic"] if "topic" in item else item.get("name"): item
                     for item in admin.describe_topics([t for t in topics if t in existing])}
        return {topic: (len(described[topic]["partitions"]) if topic in described else None) for topic in topics}
    finally:
        if own_admin:
            admin.close()


def _client_settings(config: StreamConfig, client: Any) -> dict[str, Any]:
    settings = {k: v for k, v in config.kafka.items() if k in client.DEFAULT_CONFIG}
    settings["bootstrap_servers"] = [s.strip() for s in str(config.bootstrap_servers).split(",") if s.strip()]
    return settings


def send_files(config: StreamConfig, paths: Sequence[Path], producer: Any = None) -> list[tuple[str, int, int]]:
    """Produce each file's bytes as one record to the input topic; returns ``(topic, partition, offset)``.

    The record key is the resource's ``id`` when the file is a FHIR resource with one, else the file name.
    """
    from kafka import KafkaProducer

    own = producer is None
    producer = producer or KafkaProducer(**_client_settings(config, KafkaProducer), acks="all")
    try:
        futures = []
        for path in paths:
            value = Path(path).read_bytes()
            try:
                key = str(json.loads(value).get("id") or Path(path).name)
            except (ValueError, AttributeError):
                key = Path(path).name
            futures.append(producer.send(config.input_topic, key=key.encode("utf-8"), value=value))
        producer.flush()
        return [(meta.topic, meta.partition, meta.offset) for meta in (future.get(timeout=30) for future in futures)]
    finally:
        if own:
            producer.close()


def read_records(config: StreamConfig, topic: str, max_records: int | None = None, timeout: float = 10.0,
                 consumer: Any = None) -> Iterator[Any]:
    """The records of ``topic`` from the beginning of every partition (no consumer group, nothing committed),
    until ``max_records`` were read or nothing came for ``timeout`` seconds."""
    from kafka import KafkaConsumer, TopicPartition

    own = consumer is None
    consumer = consumer or KafkaConsumer(**_client_settings(config, KafkaConsumer), enable_auto_commit=False,
                                         group_id=None, consumer_timeout_ms=int(timeout * 1000))
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ConfigError(f"topic {topic} not found")
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        count = 0
        for record in consumer:  # stops after consumer_timeout_ms without records
            yield record
            count += 1
            if max_records is not None and count >= max_records:
                return
    finally:
        if own:
            consumer.close()


def _parse_topic_configs(items: list[str] | None) -> dict[str, dict[str, str]]:
    result: dict[str, dict[str, str]] = {}
    for item in items or []:
        role, _, pair = item.partition(":")
        key, eq, value = pair.partition("=")
        if role not in DEFAULT_TOPIC_CONFIGS or not eq or not key:
            raise ConfigError(f"--topic-config {item!r}: expected input|output|dlq:KEY=VALUE")
        result.setdefault(role, {})[key] = value
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medcorr.stream.admin {create-topics,describe,send,read}``."""
    parser = argparse.ArgumentParser(prog="python -m medcorr.stream.admin", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("create-topics", "describe", "send", "read"))
    parser.add_argument("files", nargs="*", metavar="FILE", help="send: files to produce to the input topic")
    parser.add_argument("--config", metavar="stream.toml")
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--input-topic")
    parser.add_argument("--output-topic")
    parser.add_argument("--dead-letter-topic")
    parser.add_argument("--kafka-option", action="append", metavar="KEY=VALUE")
    parser.add_argument("--partitions", type=int, default=6, help="partitions per topic (default: 6)")
    parser.add_argument("--replication-factor", type=int, default=1, help="replicas (production: 3)")
    parser.add_argument("--topic-config", action="append", metavar="ROLE:KEY=VALUE",
                        help="topic setting, ROLE is input, output or dlq (e.g. dlq:retention.ms=-1)")
    parser.add_argument("--topic", choices=("input", "output", "dlq"), default="output",
                        help="read: which topic (default: output)")
    parser.add_argument("--max", type=int, metavar="N", help="read: stop after N records")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="read: stop after SECONDS without a record (default: 10)")
    args = parser.parse_intermixed_args(argv)
    try:
        cli = {
            "bootstrap_servers": args.bootstrap_servers, "input_topic": args.input_topic,
            "output_topic": args.output_topic, "dead_letter_topic": args.dead_letter_topic,
            "kafka": parse_kafka_options(args.kafka_option),
        }
        config = load_config(cli, config_path=args.config)
        topic_configs = _parse_topic_configs(args.topic_config)
    except ConfigError as error:
        print(f"medcorr stream admin: error: {error}", file=sys.stderr)
        return 2
    if args.action in ("send", "read") and bool(args.files) != (args.action == "send"):
        print(f"medcorr stream admin: error: {'send needs FILE arguments' if args.action == 'send' else 'read takes no FILE'}",
              file=sys.stderr)
        return 2
    if args.action == "create-topics":
        for topic, state in create_topics(config, args.partitions, args.replication_factor, topic_configs).items():
            print(f"{topic}\t{state}")
    elif args.action == "send":
        missing = [name for name in args.files if not Path(name).is_file()]
        if missing:
            print(f"medcorr stream admin: error: file not found: {missing[0]}", file=sys.stderr)
            return 2
        for topic, partition, offset in send_files(config, [Path(name) for name in args.files]):
            print(f"{topic}\t{partition}\t{offset}")
    elif args.action == "read":
        topic = {"input": config.input_topic, "output": config.output_topic, "dlq": config.dead_letter_topic}[args.topic]
        try:
            for record in read_records(config, topic, args.max, args.timeout):
                print(record.value.decode("utf-8", "replace") if record.value is not None else "null", flush=True)
        except ConfigError as error:
            print(f"medcorr stream admin: error: {error}", file=sys.stderr)
            return 2
    else:
        for topic, count in describe_topics(config).items():
            print(f"{topic}\t{'missing' if count is None else f'{count} partitions'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
