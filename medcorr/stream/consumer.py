"""The at-least-once Kafka loop of ``medcorr stream``.

One cycle per polled batch (the quixstreams "checkpoint" pattern, with ``enable_auto_commit=False``)::

    poll a batch -> read the notes (bad ones become dead-letter records) -> nlp.pipe over the good notes
    -> map verdicts to FHIR Bundles -> send outputs and DLQ records -> producer.flush()
    -> check every send succeeded -> commit the batch's offsets

While messages keep coming, consecutive batches flow through one long ``nlp.pipe`` call (a *burst*): the
next batch is polled and fed to the pipeline while the model still works on the end of the previous one,
so the model does not wait for the delivery and commit of every batch. Batches are still finished
(delivered, acknowledged, committed) one at a time and in poll order, so nothing is committed before
every record of that batch and of every earlier batch is acknowledged by the broker: a crash at any point
re-delivers exactly the uncommitted batches (duplicates carry the same idempotency key and the same
value). A burst ends when a poll finds nothing new, on stop, or at ``max_messages``; the batches in hand
are then finished. A failed send stops the process (exit 3) without committing. Partition revocation
(rebalance) commits whatever is done and not yet committed; batches still in the pipeline are finished
and sent, but their revoked partitions are not committed (their new owner redoes them). The broker being
unreachable at start or during the run is retried with backoff and logged; after ``broker_timeout``
seconds the process exits with code 3.

With a language-model verifier in the pipeline, a note it cannot judge (endpoint down or slow past its
retries, answers rejected) comes out with status ``unverified`` (no DetectedIssue, header
``medcorr.status: unverified``) and is committed like any other: the consumer never waits for the endpoint
to come back, and never reports "no error" for such a note. Kafka is not polled while the verifier works,
so ``max_poll_interval_ms`` is sized at start to the verifier's worst case between two polls
(:mod:`medcorr.stream.sizing`: a value set below it is refused with exit code 2, an unset one is raised).

Logs carry ids, offsets, codes and counts; never note text (kafka-python's own DEBUG logging, which
prints request payloads, is capped at INFO).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from medcorr import __version__
from medcorr.fhir import BadInputError, NoteInput, read_notes, verdict_to_bundle
from medcorr.finding import Status, Verdict
from medcorr.pipeline import medcorr_component, verdict_of, verifier_batch, verifier_of
from medcorr.stream.config import StreamConfig
from medcorr.stream.metrics import StreamMetrics
from medcorr.stream.records import (
    H_VALUE_OMITTED,
    MAPPING_ERROR,
    OUTPUT_TOO_LARGE,
    PIPELINE_ERROR,
    OutRecord,
    SourceCoordinates,
    dead_letter_record,
    idempotency_key,
    output_record,
    qualified_name,
)
from medcorr.stream.sizing import KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS, poll_budget

logger = logging.getLogger("medcorr.stream")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BROKER = 3
EXIT_PIPELINE = 4

#: A broker heard from within this many seconds counts as reachable (for the idle-timeout exit).
_HEALTHY_WINDOW_S = 15.0
_PROGRESS_EVERY_S = 30.0
#: Poll timeout inside a burst: records kafka-python has prefetched come back at once; when none are
#: there within this time the burst ends and the batches in hand are finished.
_BURST_POLL_MS = 5


class StreamError(Exception):
    """Stops the loop with :attr:`exit_code` (offsets of the batch in hand are not committed)."""

    exit_code = EXIT_FAILURE


class BrokerUnavailableError(StreamError):
    """The broker stayed unreachable for longer than ``broker_timeout``."""

    exit_code = EXIT_BROKER


class DeliveryError(StreamError):
    """A produced record was not acknowledged; the batch is not committed and will be redelivered."""

    exit_code = EXIT_BROKER


class PipelineBrokenError(StreamError):
    """Too many consecutive pipeline exceptions: the model is broken, not the notes."""

    exit_code = EXIT_PIPELINE


class ConnectorConfigError(StreamError):
    """kafka-python rejected the settings."""

    exit_code = EXIT_USAGE


def model_version_of(nlp: Any) -> str:
    """The model version of the pipeline's medcorr component when there is one, else ``"unknown"``."""
    try:
        return str(getattr(medcorr_component(nlp), "model_version", "unknown") or "unknown")
    except Exception:  # noqa: BLE001 (a version label must never stop the stream)
        return "unknown"


#: ``nlp.pipe`` batch when the detector runs one window per model call (CPU): the medcorr component then
#: overlaps the model on one pipe batch with the upstream components and verdicts of the next. On the
#: broker tests' short notes, 231 against 221 notes/s (medians of 4 interleaved pairs, every pair faster,
#: with one ``nlp.pipe`` call per Kafka batch). A batched detector (CUDA) gets pipe batches of a whole
#: Kafka batch, to keep its calls full. A verifier that can have more notes in flight than this gets
#: pipe batches of that many (up to the Kafka batch), so that the language model is kept busy.
OVERLAP_PIPE_BATCH = 8


def pipe_batch_size(nlp: Any, notes: int) -> int:
    """Notes per ``nlp.pipe`` batch for Kafka batches of ``notes`` (see :data:`OVERLAP_PIPE_BATCH`)."""
    try:
        detector = getattr(medcorr_component(nlp), "detector", None)
    except Exception:  # noqa: BLE001 (a tuning guess must never stop the stream)
        detector = None
    one_window_calls = getattr(detector, "batch_size", None) == 1
    return max(1, min(notes, verifier_batch(nlp, OVERLAP_PIPE_BATCH)) if one_window_calls else notes)


def _offset_and_metadata(offset: int) -> Any:
    from kafka.structs import OffsetAndMetadata

    try:
        return OffsetAndMetadata(offset, "", -1)  # kafka-python >= 2.1 (leader_epoch)
    except TypeError:  # pragma: no cover (kafka-python 2.0)
        return OffsetAndMetadata(offset, "")


@dataclass
class _Item:
    """One unit of output: a note (or a whole unusable message) of one input record."""

    record: Any
    coords: SourceCoordinates
    note: NoteInput | None = None
    error: BaseException | None = None
    code: str | None = None
    message: str | None = None
    verdict: Verdict | None = None
    out: OutRecord | None = None


@dataclass
class _Batch:
    """One polled batch on its way through a burst; finished (delivered, committed) in poll order."""

    records: list[Any]
    items: list[_Item]
    polled_at: float
    #: next offset to commit per partition (partitions revoked while the batch is in flight are removed)
    offsets: dict[Any, int]
    #: good notes whose verdict has not come back from the pipeline yet
    awaiting: int = 0


class _FeedFailed(Exception):
    """Carries an exception raised while polling or finishing batches inside a burst's note feed, so
    that it is not mistaken for a pipeline exception on its way out of ``nlp.pipe``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(qualified_name(cause))
        self.cause = cause


@dataclass
class RunSummary:
    """What one run did (also logged as the last line)."""

    messages: int = 0
    processed: int = 0
    flagged: int = 0
    #: of the processed notes, those a configured verifier could not judge (status ``unverified``)
    unverified: int = 0
    dead_lettered: int = 0
    batches: int = 0
    exit_code: int = EXIT_OK
    reason: str = ""
    dead_letter_codes: dict[str, int] = field(default_factory=dict)


class _Sent:
    """A send in flight: the record and its future (or the exception ``send`` raised)."""

    def __init__(self, record: OutRecord, future: Any = None, error: BaseException | None = None) -> None:
        self.record = record
        self.future = future
        self.error = error

    def failure(self) -> BaseException | None:
        if self.error is not None:
            return self.error
        if self.future is None or not self.future.is_done:
            from kafka.errors import KafkaTimeoutError

            return KafkaTimeoutError("send not acknowledged after flush")
        return None if self.future.succeeded() else (self.future.exception or RuntimeError("send failed"))


class StreamProcessor:
    """Consume FHIR DocumentReferences, check them with ``nlp``, produce Bundles / dead letters.

    ``nlp`` is any spaCy ``Language`` whose docs carry a :class:`Verdict` in ``doc._.medcorr`` (built by
    :func:`medcorr.pipeline.build_pipeline`). ``consumer_factory`` / ``producer_factory`` default to
    kafka-python's ``KafkaConsumer`` / ``KafkaProducer`` (replaceable in tests).
    """

    def __init__(
        self,
        config: StreamConfig,
        nlp: Any,
        *,
        metrics: StreamMetrics | None = None,
        consumer_factory: Callable[..., Any] | None = None,
        producer_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.nlp = nlp
        self.metrics = metrics or StreamMetrics()
        self.model_version = model_version_of(nlp)
        self.summary = RunSummary()
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._stop = threading.Event()
        self._stop_reason = ""
        self.consumer: Any = None
        self.producer: Any = None
        self._pending: dict[Any, int] = {}
        #: polled batches not finished yet, in poll order, and their good notes awaiting a verdict
        self._in_flight: deque[_Batch] = deque()
        self._awaiting: deque[tuple[_Batch, _Item]] = deque()
        self._polled_messages = 0
        self._last_contact = time.monotonic()
        self._last_activity = time.monotonic()
        self._last_health_check = 0.0
        self._last_progress = time.monotonic()
        self._consecutive_pipeline_errors = 0
        self._joined = False
        self._last_lag = 0.0
        #: ``max_poll_interval_ms`` raised for a slow verifier (None: the settings' own value)
        self._max_poll_interval_ms: int | None = None
        verifier = verifier_of(nlp)
        if verifier is not None and callable(getattr(verifier, "stats", None)):
            self.metrics.attach_verifier(verifier)
        self.metrics.info.set(
            1, version=__version__, model_version=self.model_version, fhir_version=config.fhir_version
        )

    # ------------------------------------------------------------------ control

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to stop after the batch in hand (safe from signal handlers and other threads)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop.is_set()

    def run(self) -> int:
        """Run until stopped, bounded out, or failed; returns the process exit code."""
        config = self.config
        logger.info(
            "medcorr stream %s starting: bootstrap=%s input=%s output=%s dlq=%s group=%s fhir=%s model=%s "
            "batch=%d",
            __version__, config.bootstrap_servers, config.input_topic, config.output_topic,
            config.dead_letter_topic, config.group_id, config.fhir_version, self.model_version, config.batch_size,
        )
        _warn_if_slow_checksums()
        code = EXIT_OK
        try:
            self._size_poll_interval()
            self._connect()
            if not self.stopping:
                self._loop()
            self.summary.reason = self._stop_reason or "stopped"
        except StreamError as error:
            code = error.exit_code
            self.summary.reason = str(error)
            logger.error("%s", error)
        finally:
            self._close(clean=code == EXIT_OK)
        self.summary.exit_code = code
        summary = self.summary
        logger.info(
            "stopped (%s): exit=%d messages=%d processed=%d flagged=%d unverified=%d dead_lettered=%d batches=%d",
            summary.reason, code, summary.messages, summary.processed, summary.flagged, summary.unverified,
            summary.dead_lettered, summary.batches,
        )
        return code

    # ------------------------------------------------------------------ connection

    def _size_poll_interval(self) -> None:
        """Make ``max_poll_interval_ms`` cover the verifier's worst case between two polls
        (:mod:`medcorr.stream.sizing`): refuse a value set below it (exit 2), raise kafka-python's default
        to it when none is set."""
        config = self.config
        budget = poll_budget(self.nlp, config.batch_size, pipe_batch_size(self.nlp, config.batch_size))
        if budget is None:
            return
        needed = budget.needed_ms
        given = config.consumer_settings().get("max_poll_interval_ms")
        if needed is None:
            logger.warning(
                "cannot bound the time between two polls: %s; make sure max_poll_interval_ms (now %s ms) "
                "exceeds it, or the consumer leaves its group while the verifier works",
                budget.describe(), given if given is not None else KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS,
            )
            return
        # the liveness probe must not call a process that waits on its verifier dead
        self.metrics.stale_after = max(self.metrics.stale_after, needed / 1000)
        if given is not None:
            if int(given) < needed:
                raise ConnectorConfigError(
                    f"max_poll_interval_ms={int(given)} is too small for the verifier: between two polls it may "
                    f"take {budget.describe()}; set max_poll_interval_ms >= {needed}, or leave it unset (medcorr "
                    f"then sets it), or lower batch_size or the verifier's timeout, max_retries or samples"
                )
            logger.info("max_poll_interval_ms=%d covers the verifier (%s)", int(given), budget.describe())
            return
        if needed > KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS:
            self._max_poll_interval_ms = needed
            logger.info("max_poll_interval_ms raised from %d to %d for the verifier (%s)",
                        KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS, needed, budget.describe())
        else:
            logger.info("max_poll_interval_ms=%d covers the verifier (%s)", KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS,
                        budget.describe())

    def _consumer_kwargs(self) -> dict[str, Any]:
        config = self.config
        kwargs: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in str(config.bootstrap_servers).split(",") if s.strip()],
            "group_id": config.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": config.auto_offset_reset,
            "max_poll_records": config.batch_size,
        }
        if config.client_id:
            kwargs["client_id"] = config.client_id
        if self._max_poll_interval_ms is not None:
            kwargs["max_poll_interval_ms"] = self._max_poll_interval_ms
        kwargs.update(config.consumer_settings())
        return kwargs

    def _producer_kwargs(self) -> dict[str, Any]:
        config = self.config
        timeout_ms = int(config.broker_timeout * 1000)
        settings = config.producer_settings()
        linger_ms = int(settings.get("linger_ms", 5))
        request_ms = int(settings.get("request_timeout_ms", min(30_000, max(1_000, timeout_ms // 2))))
        kwargs: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in str(config.bootstrap_servers).split(",") if s.strip()],
            "acks": "all",
            "linger_ms": linger_ms,
            "request_timeout_ms": request_ms,
            # the producer retries a send for up to broker_timeout (kafka-python needs > linger + request)
            "delivery_timeout_ms": max(timeout_ms, linger_ms + request_ms + 1),
            "max_block_ms": min(60_000, timeout_ms),
        }
        if config.client_id:
            kwargs["client_id"] = config.client_id
        kwargs.update(settings)
        return kwargs

    def _connect(self) -> None:
        """Create the clients and subscribe, retrying with backoff until ``broker_timeout``."""
        from kafka import KafkaConsumer, KafkaProducer
        import kafka.errors as kafka_errors

        unreachable: tuple[type[BaseException], ...] = tuple(
            getattr(kafka_errors, name)
            for name in ("KafkaTimeoutError", "NoBrokersAvailable", "KafkaConnectionError")
            if hasattr(kafka_errors, name)
        ) + (OSError,)
        config_errors = (kafka_errors.KafkaConfigurationError, TypeError, ValueError)

        consumer_factory = self._consumer_factory or KafkaConsumer
        producer_factory = self._producer_factory or KafkaProducer
        started = time.monotonic()
        deadline = started + self.config.broker_timeout
        backoff = 1.0
        attempt = 0
        while not self.stopping:
            attempt += 1
            remaining = deadline - time.monotonic()
            per_try_ms = int(min(10.0, max(1.0, remaining / 4)) * 1000)
            producer = consumer = None
            try:
                producer_kwargs = self._producer_kwargs()
                if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # kafka-python >= 2.1
                    producer_kwargs.setdefault("bootstrap_timeout_ms", per_try_ms)
                producer = producer_factory(**producer_kwargs)
                consumer_kwargs = self._consumer_kwargs()
                if "bootstrap_timeout_ms" in KafkaConsumer.DEFAULT_CONFIG:
                    consumer_kwargs.setdefault("bootstrap_timeout_ms", per_try_ms)
                consumer = consumer_factory(**consumer_kwargs)
                consumer.subscribe([self.config.input_topic], listener=_RebalanceListener(self))
            except unreachable as error:
                for client in (consumer, producer):
                    _quiet_close(client)
                now = time.monotonic()
                if now >= deadline:
                    raise BrokerUnavailableError(
                        f"broker {self.config.bootstrap_servers} unreachable for {now - started:.0f}s "
                        f"({attempt} attempts; broker_timeout={self.config.broker_timeout:g}s): "
                        f"{type(error).__name__}; giving up"
                    ) from None
                wait = min(backoff, deadline - now)
                # one warning for the outage, then the retries only at DEBUG, and one error when giving up
                logger.log(
                    logging.WARNING if attempt == 1 else logging.DEBUG,
                    "broker %s not reachable (%s, attempt %d, %.0fs of %gs); retrying with backoff "
                    "(1 s to 15 s) until broker_timeout",
                    self.config.bootstrap_servers, type(error).__name__, attempt, now - started,
                    self.config.broker_timeout,
                )
                self._stop.wait(wait)
                backoff = min(backoff * 2, 15.0)
                continue
            except config_errors as error:
                for client in (consumer, producer):
                    _quiet_close(client)
                raise ConnectorConfigError(f"invalid Kafka client settings: {error}") from None
            except Exception as error:  # noqa: BLE001 (authentication, authorization ...)
                for client in (consumer, producer):
                    _quiet_close(client)
                raise StreamError(f"cannot connect to {self.config.bootstrap_servers}: {qualified_name(error)}: "
                                  f"{error}") from None
            self.producer, self.consumer = producer, consumer
            self._last_contact = self._last_activity = time.monotonic()
            logger.info("connected to %s; subscribed to %s as group %s", self.config.bootstrap_servers,
                        self.config.input_topic, self.config.group_id)
            return

    def _close(self, clean: bool) -> None:
        """Flush and close the clients; on a clean stop commit what is done first."""
        if clean and self.consumer is not None and self._pending:
            try:
                self._commit_pending(final=True)
            except StreamError as error:
                logger.error("final commit failed: %s", error)
        if self.producer is not None:
            try:
                self.producer.close(timeout=5)
            except Exception as error:  # noqa: BLE001
                logger.warning("closing the producer: %s", type(error).__name__)
        if self.consumer is not None:
            try:
                self.consumer.close(autocommit=False, timeout_ms=3000)
            except TypeError:  # pragma: no cover (kafka-python 2.0)
                self.consumer.close(autocommit=False)
            except Exception as error:  # noqa: BLE001
                logger.warning("closing the consumer: %s", type(error).__name__)
        self.consumer = self.producer = None

    # ------------------------------------------------------------------ loop

    def _loop(self) -> None:
        config = self.config
        poll_ms = int(config.poll_timeout * 1000)
        while not self.stopping:
            self.metrics.heartbeat()
            polled_at = time.monotonic()
            records = self._poll(poll_ms)
            now = time.monotonic()
            if not records:
                if self.stopping:
                    break
                self._check_broker(now)
                self._update_lag(now, force=False)
                self._maybe_log_progress(now)
                if (
                    config.idle_timeout is not None
                    and self._joined
                    and now - self._last_activity >= config.idle_timeout
                    and self._broker_silence(now) < _HEALTHY_WINDOW_S
                ):
                    self.stop(f"idle for {config.idle_timeout:g}s")
                continue
            self._run_burst(records, polled_at)

    def _poll(self, timeout_ms: int) -> list[Any]:
        """The records of one poll (at most ``batch_size``, and none past ``max_messages``)."""
        config = self.config
        limit = config.batch_size
        if config.max_messages is not None:
            left = config.max_messages - self._polled_messages
            if left <= 0:
                self.stop(f"max_messages={config.max_messages} reached")
                return []
            limit = min(limit, left)
        polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=limit)
        records = [record for batch in polled.values() for record in batch]
        if records:
            self._polled_messages += len(records)
            self._last_contact = self._last_activity = time.monotonic()
        return records

    def _run_burst(self, records: list[Any], polled_at: float) -> None:
        """Feed ``records`` and the batches polled after them through one ``nlp.pipe`` call; finish every
        batch (deliver, then commit) in poll order as its last verdict comes back."""
        batch_size = pipe_batch_size(self.nlp, self.config.batch_size)
        try:
            for doc in self.nlp.pipe(self._feed(records, polled_at), batch_size=batch_size):
                self._take_result(_verdict_or_error(doc))
                self._finish_ready()
        except _FeedFailed as failed:
            raise failed.cause from None
        except StreamError:
            raise
        except Exception as error:  # noqa: BLE001 (the pipeline failed on a batch: find the culprit note)
            logger.warning(
                "pipeline raised %s with %d notes in flight; checking them one by one",
                qualified_name(error), len(self._awaiting),
            )
            while self._awaiting:
                self._take_result(self._check_alone(self._awaiting[0][1]))
        self._finish_ready()

    def _feed(self, records: list[Any], polled_at: float) -> Iterator[str]:
        """The texts of the good notes of ``records``, then of the batches polled after them, until a poll
        finds nothing new, the processor stops, or a batch of unusable messages has to wait behind
        unfinished ones (so that they never pile up)."""
        try:
            while True:
                for item in self._start_batch(records, polled_at):
                    yield item.note.text  # type: ignore[union-attr]
                self._finish_ready()
                if self.stopping or (self._in_flight and self._in_flight[-1].awaiting == 0):
                    return
                self.metrics.heartbeat()
                polled_at = time.monotonic()
                records = self._poll(_BURST_POLL_MS)
                if not records:
                    return
        except Exception as error:
            raise _FeedFailed(error) from error

    def _start_batch(self, records: list[Any], polled_at: float) -> list[_Item]:
        """Read ``records`` into a batch in flight; its good notes, which now await their verdicts."""
        from kafka import TopicPartition

        items: list[_Item] = []
        offsets: dict[Any, int] = {}
        for record in records:
            items.extend(self._read(record))
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, -1), record.offset + 1)
        good = [item for item in items if item.error is None]
        batch = _Batch(records, items, polled_at, offsets, awaiting=len(good))
        self._in_flight.append(batch)
        self._awaiting.extend((batch, item) for item in good)
        return good

    def _take_result(self, result: Verdict | BaseException) -> None:
        """Attach the pipeline's result to the oldest note awaiting one."""
        batch, item = self._awaiting.popleft()
        batch.awaiting -= 1
        if isinstance(result, Verdict):
            item.verdict = result
            self._consecutive_pipeline_errors = 0
            return
        item.error, item.code = result, PIPELINE_ERROR
        item.message = f"{qualified_name(result)} in the medcorr pipeline: {str(result)[:300]}"
        self.metrics.pipeline_errors.inc()
        self._consecutive_pipeline_errors += 1
        limit = self.config.max_consecutive_pipeline_errors
        if limit and self._consecutive_pipeline_errors >= limit:
            raise PipelineBrokenError(
                f"{self._consecutive_pipeline_errors} consecutive notes raised in the pipeline (last: "
                f"{qualified_name(result)}); stopping without committing this batch "
                f"(max_consecutive_pipeline_errors={limit})"
            )

    def _check_alone(self, item: _Item) -> Verdict | BaseException:
        try:
            return verdict_of(self.nlp(item.note.text))  # type: ignore[union-attr]
        except Exception as error:  # noqa: BLE001
            return error

    def _finish_ready(self) -> None:
        """Finish the oldest batches in flight whose every note has its verdict."""
        while self._in_flight and self._in_flight[0].awaiting == 0:
            self._finish(self._in_flight.popleft())

    def _finish(self, batch: _Batch) -> None:
        """Build, deliver and commit one batch, then count it."""
        items = batch.items
        for item in items:
            self._build(item)
        self._deliver([item.out for item in items if item.out is not None])
        delivered_at = time.monotonic()
        self._pending.update(batch.offsets)
        self._commit_pending()

        # bookkeeping after the commit: these counts are committed work
        summary = self.summary
        summary.batches += 1
        summary.messages += len(batch.records)
        dead_messages = set()
        for item in items:
            out = item.out
            if out is None:
                continue
            if out.dead_letter:
                summary.dead_lettered += 1
                summary.dead_letter_codes[out.code or "?"] = summary.dead_letter_codes.get(out.code or "?", 0) + 1
                self.metrics.dead_lettered.inc(code=out.code or "?")
                dead_messages.add((item.coords.partition, item.coords.offset))
            else:
                summary.processed += 1
                self.metrics.processed.inc()
                if item.verdict is not None:
                    self.metrics.outputs.inc(status=item.verdict.status.value)
                    if item.verdict.status is Status.UNVERIFIED:
                        summary.unverified += 1
                    if item.verdict.flag:
                        summary.flagged += 1
                        self.metrics.flagged.inc()
                self.metrics.latency.observe(delivered_at - batch.polled_at)
        records = batch.records
        self.metrics.messages.inc(len(records) - len(dead_messages), outcome="ok")
        self.metrics.messages.inc(len(dead_messages), outcome="dead_letter")
        self.metrics.batch.observe(time.monotonic() - batch.polled_at)
        if logger.isEnabledFor(logging.DEBUG):
            spans = ", ".join(
                f"{tp.partition}@{min(r.offset for r in records if r.partition == tp.partition)}-{offset - 1}"
                for tp, offset in sorted(batch.offsets.items(), key=lambda kv: kv[0].partition)
            )
            logger.debug(
                "batch committed: %d messages (%s), %d outputs, %d dead letters, %.3fs",
                len(records), spans, sum(1 for i in items if i.out and not i.out.dead_letter),
                sum(1 for i in items if i.out and i.out.dead_letter), time.monotonic() - batch.polled_at,
            )
        now = time.monotonic()
        self._update_lag(now, force=True)
        self._maybe_log_progress(now)

    # ------------------------------------------------------------------ steps

    def _read(self, record: Any) -> list[_Item]:
        """The items of one input record: one per note, or one for an unusable message."""
        base = SourceCoordinates(record.topic, record.partition, record.offset)
        try:
            notes = read_notes(record.value, self.config.fhir_version, self.config.max_note_bytes)
        except BadInputError as error:
            return [_Item(record, base, error=error, code=error.code)]
        except Exception as error:  # noqa: BLE001 (a parser bug must not block the partition)
            return [_Item(record, base, error=error, code="READ_ERROR",
                          message=f"{qualified_name(error)} while reading the message")]
        items = []
        for note in notes:
            coords = SourceCoordinates(record.topic, record.partition, record.offset, note.entry, note.entries)
            if note.error is not None:
                items.append(_Item(record, coords, note=note, error=note.error, code=note.error.code))
            else:
                items.append(_Item(record, coords, note=note))
        return items

    def _build(self, item: _Item) -> None:
        """Set ``item.out``: the output record, or the dead-letter record."""
        config = self.config
        if item.error is None and item.verdict is not None and item.note is not None:
            key = idempotency_key(item.note.source, item.coords)
            try:
                bundle = verdict_to_bundle(
                    item.verdict, item.note.source, config.fhir_version, self.model_version, idempotency_key=key,
                    validation=config.output_validation,
                )
                item.out = output_record(
                    config.output_topic, bundle, item.note, item.coords,
                    status=item.verdict.status.value, flag=item.verdict.flag, score=item.verdict.score,
                    findings=len(item.verdict.findings) if item.verdict.flag else 0,
                    fhir_version=config.fhir_version, medcorr_version=__version__,
                    model_version=self.model_version,
                )
                item.out.fallback = lambda: self._dead_letter(
                    item, RuntimeError("output record too large for the broker"), OUTPUT_TOO_LARGE,
                    "the output Bundle was rejected as too large by the broker",
                )
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "checked %s key=%s status=%s flag=%s score=%s findings=%d",
                        item.coords.describe(), key, item.verdict.status.value, item.verdict.flag, item.verdict.score,
                        len(item.verdict.findings),
                    )
                return
            except Exception as error:  # noqa: BLE001 (mapping bug: dead-letter this note, go on)
                item.error, item.code = error, MAPPING_ERROR
                item.message = f"{qualified_name(error)} while building the FHIR output"
        if item.error is None:  # pragma: no cover (defensive)
            item.error, item.code = RuntimeError("note was neither checked nor rejected"), PIPELINE_ERROR
        item.out = self._dead_letter(item, item.error, item.code, item.message)
        if isinstance(item.error, BadInputError):
            logger.warning("dead-lettered %s code=%s: %s", item.coords.describe(), item.code, item.error)
        else:
            logger.warning(
                "dead-lettered %s code=%s (%s)", item.coords.describe(), item.code, qualified_name(item.error)
            )

    def _dead_letter(self, item: _Item, error: BaseException, code: str | None, message: str | None) -> OutRecord:
        record = item.record
        source = item.note.source if item.note is not None else None
        out = dead_letter_record(
            self.config.dead_letter_topic, record.key, record.value, record.headers, item.coords, error,
            source=source, medcorr_version=__version__, model_version=self.model_version,
            code=code, message=message,
        )

        def without_value() -> OutRecord:
            key = out.key if out.key is not None else idempotency_key(source, item.coords).encode()
            return OutRecord(out.topic, key, None, out.headers + [(H_VALUE_OMITTED, b"too-large")],
                             dead_letter=True, code=out.code)

        out.fallback = without_value
        return out

    def _deliver(self, records: list[OutRecord]) -> None:
        """Send, flush, verify; records rejected as too large get their fallback once. Raises DeliveryError."""
        from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

        too_large = (MessageSizeTooLargeError,)
        for _round in range(3):
            sent = [self._send(record) for record in records]
            try:
                self.producer.flush(timeout=self.config.broker_timeout + 30)
            except KafkaTimeoutError:
                pass  # every unacknowledged send is reported below
            failed = [(item, item.failure()) for item in sent]
            failed = [(item, error) for item, error in failed if error is not None]
            if not failed:
                self._last_contact = time.monotonic()
                return
            retry = []
            for item, error in failed:
                fallback = item.record.fallback
                if isinstance(error, too_large) and fallback is not None:
                    retry.append(fallback())
                    logger.warning("record for %s too large for topic %s; sending its fallback",
                                   _coords_of(item.record), item.record.topic)
                    continue
                self.metrics.produce_failures.inc()
                raise DeliveryError(
                    f"{len(failed)} of {len(sent)} records not acknowledged by the broker (first: "
                    f"{qualified_name(error)}: {error}); offsets not committed, the batch will be redelivered"
                )
            records = retry
        raise DeliveryError("records still too large after fallback; offsets not committed")

    def _send(self, record: OutRecord) -> _Sent:
        try:
            future = self.producer.send(record.topic, key=record.key, value=record.value, headers=record.headers)
        except Exception as error:  # noqa: BLE001 (reported as a failed send)
            return _Sent(record, error=error)
        return _Sent(record, future=future)

    def _commit_pending(self, final: bool = False) -> None:
        """Commit ``self._pending``; retry while the broker is unreachable (until ``broker_timeout``)."""
        from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

        if not self._pending:
            return
        deadline = time.monotonic() + (5.0 if final else self.config.broker_timeout)
        backoff = 0.5
        while True:
            offsets = {tp: _offset_and_metadata(offset) for tp, offset in self._pending.items()}
            remaining_ms = int(max(1.0, deadline - time.monotonic()) * 1000)
            try:
                self.consumer.commit(offsets, timeout_ms=min(30_000, remaining_ms))
            except CommitFailedError:
                logger.warning(
                    "commit of %s rejected: partitions were reassigned; their new owner redoes them "
                    "(duplicates carry the same idempotency key)", _describe_offsets(self._pending),
                )
                self._pending.clear()
                return
            except RebalanceInProgressError:
                logger.info("rebalance in progress; offsets %s are committed on revocation",
                            _describe_offsets(self._pending))
                return
            except KafkaError as error:
                if time.monotonic() + backoff >= deadline:
                    raise BrokerUnavailableError(
                        f"cannot commit offsets {_describe_offsets(self._pending)} "
                        f"({qualified_name(error)}); the batch will be redelivered"
                    ) from None
                logger.warning("commit failed (%s); retrying in %.1fs", qualified_name(error), backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self.metrics.commits.inc()
            self._last_contact = time.monotonic()
            logger.debug("committed %s", _describe_offsets(self._pending))
            self._pending.clear()
            return

    # ------------------------------------------------------------------ health, lag, progress

    def _broker_silence(self, now: float) -> float:
        """Seconds since the last sign of a live broker.

        Signs: records fetched, a commit, a rebalance callback, or (from kafka-python's metrics) an open
        connection together with a recent group heartbeat (or a group join still in progress). With the
        broker down, kafka-python's ``connection-count`` drops to 0; with a half-open connection the
        heartbeats stop.
        """
        try:
            metrics = self.consumer.metrics()
        except Exception:  # noqa: BLE001
            metrics = {}
        if "consumer-metrics" not in metrics:
            # kafka-python metrics disabled (metrics_enabled=false): no signal while idle, so outages are
            # only detected by failing sends and commits
            return 0.0
        try:
            connections = float(metrics["consumer-metrics"].get("connection-count", 0.0))
            coordinator = metrics.get("consumer-coordinator-metrics", {})
            heartbeat = float(coordinator.get("last-heartbeat-seconds-ago", math.inf))
        except (TypeError, ValueError):
            connections, heartbeat = 0.0, math.inf
        if connections > 0 and (heartbeat < _HEALTHY_WINDOW_S or not self._joined):
            self._last_contact = max(self._last_contact, now)
        return now - self._last_contact

    def _check_broker(self, now: float) -> None:
        """Raise :class:`BrokerUnavailableError` when the broker is silent for ``broker_timeout``."""
        if now - self._last_health_check < 1.0:
            return
        self._last_health_check = now
        silence = self._broker_silence(now)
        if silence >= self.config.broker_timeout:
            raise BrokerUnavailableError(
                f"no contact with broker {self.config.bootstrap_servers} for {silence:.0f}s "
                f"(broker_timeout={self.config.broker_timeout:g}s); exiting"
            )
        if silence >= _HEALTHY_WINDOW_S and int(silence) % 15 == 0:
            logger.warning("no contact with broker %s for %.0fs (giving up after %gs)",
                           self.config.bootstrap_servers, silence, self.config.broker_timeout)

    def _update_lag(self, now: float, force: bool) -> None:
        if not force and now - self._last_lag < 1.0:
            return
        self._last_lag = now
        try:
            assignment = self.consumer.assignment()
        except Exception:  # noqa: BLE001
            return
        for tp in assignment:
            try:
                highwater = self.consumer.highwater(tp)
                if highwater is None:
                    continue
                position = self.consumer.position(tp, timeout_ms=100)
            except Exception:  # noqa: BLE001 (position unknown yet)
                continue
            if position is not None:
                self.metrics.lag.set(max(0, highwater - position), topic=tp.topic, partition=str(tp.partition))

    def _maybe_log_progress(self, now: float) -> None:
        if now - self._last_progress < _PROGRESS_EVERY_S:
            return
        self._last_progress = now
        s = self.summary
        logger.info(
            "progress: messages=%d processed=%d flagged=%d unverified=%d dead_lettered=%d lag=%d",
            s.messages, s.processed, s.flagged, s.unverified, s.dead_lettered, int(self.metrics.lag.total()),
        )

    # ------------------------------------------------------------------ rebalance

    def on_revoked(self, revoked: list[Any]) -> None:
        """Commit finished work of the revoked partitions before another consumer takes them; batches still
        in the pipeline will not commit those partitions."""
        revoked_set = set(revoked)
        mine = {tp: offset for tp, offset in self._pending.items() if tp in revoked_set}
        if mine:
            others = {tp: o for tp, o in self._pending.items() if tp not in revoked_set}
            self._pending = mine
            try:
                self._commit_pending(final=True)
            except StreamError as error:
                logger.error("commit on revocation failed: %s (that work will be redone)", error)
            self._pending = others
        in_flight = 0
        for batch in self._in_flight:
            kept = {tp: offset for tp, offset in batch.offsets.items() if tp not in revoked_set}
            in_flight += len(batch.offsets) > len(kept)
            batch.offsets = kept
        if in_flight:
            logger.info("%d batches in flight lost partitions: their outputs are still sent, their offsets on "
                        "those partitions are not committed (the new owner redoes them)", in_flight)
        for tp in revoked:
            self.metrics.lag.remove(topic=tp.topic, partition=str(tp.partition))
        logger.info("partitions revoked: %s", _describe_partitions(revoked))

    def on_assigned(self, assigned: list[Any]) -> None:
        """Log the new assignment."""
        self._joined = True
        self._last_contact = self._last_activity = time.monotonic()
        assigned_set = set(assigned)
        self._pending = {tp: o for tp, o in self._pending.items() if tp in assigned_set}
        logger.info("partitions assigned: %s", _describe_partitions(assigned))


def _verdict_or_error(doc: Any) -> Verdict | BaseException:
    try:
        return verdict_of(doc)
    except Exception as error:  # noqa: BLE001
        return error


def _rebalance_listener_base() -> type:
    from kafka import ConsumerRebalanceListener

    return ConsumerRebalanceListener


class _RebalanceListener(_rebalance_listener_base()):  # type: ignore[misc]
    """Forwards kafka-python rebalance callbacks to the processor."""

    def __init__(self, processor: StreamProcessor) -> None:
        self.processor = processor

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.processor.on_revoked(list(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.processor.on_assigned(list(assigned))


def _warn_if_slow_checksums() -> None:
    """Warn when kafka-python checksums record batches in pure Python (no ``crc32c`` C module)."""
    try:
        from kafka.record import util
    except ImportError:  # pragma: no cover (kafka-python is a dependency)
        return
    if getattr(util, "crc32c_c", True) is None:
        logger.warning(
            "kafka-python computes CRC32C in pure Python (about 24 ms per 100 KB of records); "
            "install the 'crc32c' package (pip install 'kafka-python[crc32c]')"
        )


def _quiet_close(client: Any) -> None:
    if client is None:
        return
    try:
        client.close(timeout=1) if hasattr(client, "flush") else client.close(autocommit=False)
    except Exception:  # noqa: BLE001
        pass


def _describe_partitions(partitions: list[Any]) -> str:
    return ",".join(f"{tp.topic}/{tp.partition}" for tp in sorted(partitions, key=lambda t: (t.topic, t.partition))) or "-"


def _describe_offsets(offsets: dict[Any, int]) -> str:
    return ",".join(f"{tp.topic}/{tp.partition}@{o}" for tp, o in sorted(offsets.items(), key=lambda kv: (kv[0].topic, kv[0].partition)))


def _coords_of(record: OutRecord) -> str:
    headers = dict(record.headers)
    partition = headers.get("medcorr.source.partition", b"?").decode()
    offset = headers.get("medcorr.source.offset", b"?").decode()
    return f"{partition}@{offset}"
