"""Prometheus text-format metrics for ``medcorr stream`` (stdlib only: no client library needed).

Served by :func:`start_metrics_server` on ``/metrics`` (and a liveness probe on ``/healthz``) from a
``http.server`` thread. Metric names (all prefixed ``medcorr_stream_``):

``messages_total``              input messages handled (committed), by outcome: ``dead_letter`` when at
                                least one record of the message was dead-lettered, else ``ok``
``notes_processed_total``       notes checked and written to the output topic
``notes_flagged_total``         of those, notes whose verdict is flagged
``outputs_total``               output records written and committed, by the note's ``status``
                                (``checked``, ``claims_only``, ``unverified``, ``no_claims``, ...)
``dead_lettered_total``         records written to the dead-letter topic, by ``code``
``pipeline_errors_total``       exceptions raised by the spaCy pipeline for a note
``produce_failures_total``      sends that failed after the producer's own retries
``commits_total``               successful offset commits
``consumer_lag``                high watermark minus position, by ``topic`` and ``partition``
``note_latency_seconds``        histogram: poll of the batch -> output acknowledged, per note
``batch_seconds``               histogram: one batch, polled -> committed
``info``                        constant 1 with ``version``, ``model_version``, ``fhir_version`` labels

With a verifier in the pipeline (its ``stats()`` counters, counted from the start of the process):

``verifier_calls_total``              HTTP requests sent to the verifier's endpoint (retries included)
``verifier_prompt_tokens_total``      prompt tokens the endpoint reported
``verifier_completion_tokens_total``  completion tokens the endpoint reported
``verifier_cache_hits_total``         answers taken from the verifier's disk cache
``verifier_unverified_notes_total``   notes the verifier could not judge (no answer, rejected answers, a tie)
"""
from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

logger = logging.getLogger("medcorr.stream.metrics")

PREFIX = "medcorr_stream_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

LabelKey = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(key: LabelKey, extra: Iterable[tuple[str, str]] = ()) -> str:
    pairs = list(key) + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A monotonically increasing count, optionally labelled."""

    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the series with ``labels``."""
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """Current value of one series (0 when never incremented)."""
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            return self._values.get(key, 0.0)

    def total(self) -> float:
        """Sum over all label sets."""
        with self._lock:
            return sum(self._values.values())

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        if not items:
            items = [((), 0.0)]
        return self.header() + [f"{self.name}{_labels(key)} {_number(value)}" for key, value in items]


class Gauge(Counter):
    """A value that goes up and down (set per label set; ``remove`` drops a series)."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        """Set the series with ``labels`` to ``value``."""
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._values[key] = float(value)

    def remove(self, **labels: str) -> None:
        """Forget one series (a revoked partition)."""
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._values.pop(key, None)


class Histogram(_Metric):
    """Cumulative-bucket histogram with ``_bucket``, ``_sum`` and ``_count`` series."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets)) + (float("inf"),)
        self._counts = [0] * len(self.buckets)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float, count: int = 1) -> None:
        """Record ``count`` observations of ``value`` seconds."""
        with self._lock:
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[index] += count
                    break
            self._sum += value * count
            self._count += count

    @property
    def count(self) -> int:
        """Number of observations."""
        return self._count

    def render(self) -> list[str]:
        with self._lock:
            counts, total, count = list(self._counts), self._sum, self._count
        lines = self.header()
        cumulative = 0
        for bound, bucket in zip(self.buckets, counts):
            cumulative += bucket
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {cumulative}')
        lines.append(f"{self.name}_sum {repr(float(total))}")
        lines.append(f"{self.name}_count {count}")
        return lines


class StatsCounter(_Metric):
    """A counter read at scrape time from ``read()`` (a library's own running count), minus its value when
    the counter was created."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        super().__init__(name, help_text)
        self._read = read
        self._base = self._safe_read()

    def _safe_read(self) -> float:
        try:
            return float(self._read())
        except Exception:  # noqa: BLE001 (a scrape must never fail on a counter)
            return 0.0

    def value(self) -> float:
        """The count since this counter was created."""
        return max(0.0, self._safe_read() - self._base)

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {_number(self.value())}"]


#: ``stats()`` key of a verifier -> (metric name, help)
VERIFIER_STATS = {
    "calls": ("verifier_calls_total", "HTTP requests sent to the verifier's endpoint, retries included."),
    "prompt_tokens": ("verifier_prompt_tokens_total", "Prompt tokens reported by the verifier's endpoint."),
    "completion_tokens": ("verifier_completion_tokens_total",
                          "Completion tokens reported by the verifier's endpoint."),
    "cache_hits": ("verifier_cache_hits_total", "Verifier answers taken from its disk cache."),
    "failures": ("verifier_unverified_notes_total",
                 "Notes the verifier could not judge (no answer, rejected answers, a tie): status unverified."),
}


class StreamMetrics:
    """All metrics of one stream process."""

    def __init__(self) -> None:
        self.messages = Counter("messages_total", "Input messages handled and committed, by outcome.")
        self.processed = Counter("notes_processed_total", "Notes checked and written to the output topic.")
        self.flagged = Counter("notes_flagged_total", "Checked notes whose verdict is flagged.")
        self.outputs = Counter("outputs_total", "Output records written and committed, by the note's status.")
        self.dead_lettered = Counter("dead_lettered_total", "Records written to the dead-letter topic, by code.")
        self.pipeline_errors = Counter("pipeline_errors_total", "Exceptions raised by the pipeline for a note.")
        self.produce_failures = Counter("produce_failures_total", "Sends that failed after producer retries.")
        self.commits = Counter("commits_total", "Successful offset commits.")
        self.lag = Gauge("consumer_lag", "High watermark minus consumer position, per partition.")
        self.latency = Histogram("note_latency_seconds", "Per note: batch polled -> output acknowledged.")
        self.batch = Histogram("batch_seconds", "One batch: polled -> committed.")
        self.info = Gauge("info", "Build information (constant 1).")
        #: the verifier's counters (:data:`VERIFIER_STATS`), once :meth:`attach_verifier` was called
        self.verifier: dict[str, StatsCounter] = {}
        self.last_loop = time.monotonic()
        #: seconds without a turn of the main loop after which ``/healthz`` answers 503 (the connector
        #: raises it to the verifier's worst case between two polls)
        self.stale_after = 300.0

    def attach_verifier(self, verifier: Any) -> None:
        """Export ``verifier.stats()`` (calls, tokens, cache hits, unverified notes) from now on."""
        def reader(key: str) -> Callable[[], float]:
            return lambda: float(verifier.stats().get(key, 0))

        self.verifier = {key: StatsCounter(name, help_text, reader(key))
                         for key, (name, help_text) in VERIFIER_STATS.items()}

    def all(self) -> list[_Metric]:
        """Every metric, in exposition order."""
        return [
            self.messages, self.processed, self.flagged, self.outputs, self.dead_lettered, self.pipeline_errors,
            self.produce_failures, self.commits, self.lag, self.latency, self.batch, self.info,
            *self.verifier.values(),
        ]

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"

    def heartbeat(self) -> None:
        """Mark the main loop as alive (for ``/healthz``)."""
        self.last_loop = time.monotonic()


def start_metrics_server(
    metrics: StreamMetrics, host: str = "0.0.0.0", port: int = 0, stale_after: float | None = None
) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` in a daemon thread; returns the server (``server_address``).

    ``/healthz`` answers 503 when the main loop has not iterated for ``stale_after`` seconds (default:
    ``metrics.stale_after``, read at each request).
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body = metrics.render().encode("utf-8")
                self._reply(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/healthz":
                age = time.monotonic() - metrics.last_loop
                ok = age < (metrics.stale_after if stale_after is None else stale_after)
                self._reply(200 if ok else 503, f"{'ok' if ok else 'stale'} {age:.1f}s\n".encode(), "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server API)
            logger.debug("metrics request %s", self.path.split("?", 1)[0])

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="medcorr-metrics", daemon=True)
    thread.start()
    logger.info("metrics on http://%s:%d/metrics", *server.server_address[:2])
    return server
