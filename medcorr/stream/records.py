"""Keys, values and headers of the records ``medcorr stream`` writes (pure functions, no broker).

Every input message gives either one output record per note (a bare ``DocumentReference`` is one note; a
``Bundle`` has one note per entry) or one dead-letter record per unusable note / message. Every record
carries the source coordinates, so "exactly one output or one DLQ record per input (entry)" can be
counted by ``(medcorr.source.partition, medcorr.source.offset, medcorr.source.entry)``.

Output record headers
    ``content-type``              ``application/fhir+json``
    ``medcorr.idempotency.key``   ``DocumentReference/{id}/_history/{versionId}`` when both are present,
                                  else ``kafka:{topic}/{partition}/{offset}`` (``/{entry}`` for a Bundle entry)
    ``medcorr.source.topic`` / ``.partition`` / ``.offset``   where the input came from
    ``medcorr.source.entry`` / ``.entries``   Bundle entry index and count (absent for a bare resource)
    ``medcorr.version``, ``medcorr.model.version``, ``medcorr.fhir.version``
    ``medcorr.status``            the note's status (``checked``, ``claims_only``, ``unverified``, ...)
    ``medcorr.verdict.flag``      ``true``/``false`` when a source judged the note, ``unjudged`` otherwise
    ``medcorr.verdict.score``     the judging source's confidence (absent when unjudged), ``medcorr.findings``

Dead-letter record: the original key, value and headers, plus
    ``__streams.errors.exception``  fully qualified exception class (KIP-1034 name)
    ``__streams.errors.message``    what is wrong (no note text for input errors)
    ``__streams.errors.stacktrace`` frames only (no exception messages), for unexpected exceptions
    ``__streams.errors.topic`` / ``.partition`` / ``.offset``   source coordinates (KIP-1034 names)
    ``medcorr.error.code``          machine-readable reason (:data:`medcorr.fhir.ERROR_CODES`,
                                    ``PIPELINE_ERROR``, ``MAPPING_ERROR``, ``OUTPUT_TOO_LARGE``,
                                    ``READ_ERROR`` for an unexpected exception while reading)
    ``medcorr.error.message``       same text as ``__streams.errors.message``
    and the ``medcorr.source.*``, ``medcorr.idempotency.key``, ``medcorr.version``,
    ``medcorr.model.version`` headers of an output record.
"""
from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from medcorr.fhir import BadInputError, NoteInput, SourceRef

Headers = list[tuple[str, bytes]]

KIP1034_PREFIX = "__streams.errors."
H_EXCEPTION = KIP1034_PREFIX + "exception"
H_MESSAGE = KIP1034_PREFIX + "message"
H_STACKTRACE = KIP1034_PREFIX + "stacktrace"
H_TOPIC = KIP1034_PREFIX + "topic"
H_PARTITION = KIP1034_PREFIX + "partition"
H_OFFSET = KIP1034_PREFIX + "offset"

H_CODE = "medcorr.error.code"
H_ERROR_MESSAGE = "medcorr.error.message"
H_KEY = "medcorr.idempotency.key"
H_SRC_TOPIC = "medcorr.source.topic"
H_SRC_PARTITION = "medcorr.source.partition"
H_SRC_OFFSET = "medcorr.source.offset"
H_SRC_ENTRY = "medcorr.source.entry"
H_SRC_ENTRIES = "medcorr.source.entries"
H_VERSION = "medcorr.version"
H_MODEL_VERSION = "medcorr.model.version"
H_FHIR_VERSION = "medcorr.fhir.version"
H_STATUS = "medcorr.status"
H_FLAG = "medcorr.verdict.flag"
H_SCORE = "medcorr.verdict.score"
H_FINDINGS = "medcorr.findings"
H_VALUE_OMITTED = "medcorr.dlq.value.omitted"

PIPELINE_ERROR = "PIPELINE_ERROR"
MAPPING_ERROR = "MAPPING_ERROR"
OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"

MAX_HEADER_TEXT = 1000


@dataclass(frozen=True)
class SourceCoordinates:
    """Topic, partition and offset of an input record, plus the Bundle entry (None for a bare resource)."""

    topic: str
    partition: int
    offset: int
    entry: int | None = None
    entries: int | None = None

    def headers(self) -> Headers:
        """The ``medcorr.source.*`` headers."""
        result = [
            (H_SRC_TOPIC, self.topic.encode()),
            (H_SRC_PARTITION, str(self.partition).encode()),
            (H_SRC_OFFSET, str(self.offset).encode()),
        ]
        if self.entry is not None:
            result.append((H_SRC_ENTRY, str(self.entry).encode()))
            result.append((H_SRC_ENTRIES, str(self.entries).encode()))
        return result

    def describe(self) -> str:
        """``topic/partition@offset[#entry]`` for logs."""
        suffix = f"#{self.entry}" if self.entry is not None else ""
        return f"{self.topic}/{self.partition}@{self.offset}{suffix}"


def idempotency_key(source: SourceRef | None, coords: SourceCoordinates) -> str:
    """``DocumentReference/{id}/_history/{versionId}``, else ``kafka:{topic}/{partition}/{offset}[/{entry}]``."""
    if source is not None and source.id and source.version_id:
        return f"DocumentReference/{source.id}/_history/{source.version_id}"
    key = f"kafka:{coords.topic}/{coords.partition}/{coords.offset}"
    return key if coords.entry is None else f"{key}/{coords.entry}"


def _text(value: str) -> bytes:
    return value[:MAX_HEADER_TEXT].encode("utf-8", "replace")


def _common(coords: SourceCoordinates, key: str, medcorr_version: str, model_version: str) -> Headers:
    return coords.headers() + [
        (H_KEY, key.encode()),
        (H_VERSION, medcorr_version.encode()),
        (H_MODEL_VERSION, str(model_version).encode()),
    ]


@dataclass
class OutRecord:
    """A record to send: ``topic``, ``key``, ``value`` (bytes or None) and ``headers``."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    dead_letter: bool = False
    code: str | None = None
    #: What to send instead when the broker rejects this record as too large (None: nothing).
    fallback: Callable[[], "OutRecord"] | None = field(default=None, repr=False, compare=False)


def output_record(
    topic: str,
    bundle: dict[str, Any],
    note: NoteInput,
    coords: SourceCoordinates,
    *,
    status: str,
    flag: bool | None,
    score: float | None,
    findings: int,
    fhir_version: str,
    medcorr_version: str,
    model_version: str,
) -> OutRecord:
    """The output record for a checked note: keyed by the DocumentReference id (else the idempotency key)."""
    key = idempotency_key(note.source, coords)
    record_key = (note.source.id or key).encode("utf-8")
    headers = [("content-type", b"application/fhir+json")] + _common(coords, key, medcorr_version, model_version)
    headers += [
        (H_FHIR_VERSION, fhir_version.encode()),
        (H_STATUS, status.encode()),
        (H_FLAG, b"unjudged" if flag is None else b"true" if flag else b"false"),
    ]
    if score is not None:
        headers.append((H_SCORE, f"{float(score):.6f}".encode()))
    headers.append((H_FINDINGS, str(findings).encode()))
    value = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return OutRecord(topic, record_key, value, headers)


def exception_code(error: BaseException) -> str:
    """The ``medcorr.error.code`` of an exception (input errors carry their own)."""
    if isinstance(error, BadInputError):
        return error.code
    return str(getattr(error, "medcorr_code", PIPELINE_ERROR))


def safe_stacktrace(error: BaseException) -> str:
    """The traceback frames of ``error`` without exception messages (those may quote note text)."""
    frames = "".join(traceback.format_tb(error.__traceback__)) if error.__traceback__ else ""
    return f"Traceback (most recent call last):\n{frames}{qualified_name(error)}"


def qualified_name(error: BaseException) -> str:
    """``module.ClassName`` of an exception."""
    cls = type(error)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def dead_letter_record(
    topic: str,
    original_key: bytes | None,
    original_value: bytes | None,
    original_headers: Sequence[tuple[str, bytes]] | None,
    coords: SourceCoordinates,
    error: BaseException,
    *,
    source: SourceRef | None,
    medcorr_version: str,
    model_version: str,
    code: str | None = None,
    message: str | None = None,
) -> OutRecord:
    """The DLQ record for one unusable message / note: original key, value and headers plus error headers."""
    code = code or exception_code(error)
    message = message if message is not None else (str(error) or type(error).__name__)
    key = idempotency_key(source, coords)
    headers: Headers = [(name, bytes(value or b"")) for name, value in (original_headers or [])]
    headers += [
        (H_EXCEPTION, qualified_name(error).encode()),
        (H_MESSAGE, _text(message)),
    ]
    if not isinstance(error, BadInputError):
        headers.append((H_STACKTRACE, safe_stacktrace(error)[-MAX_HEADER_TEXT * 4:].encode("utf-8", "replace")))
    headers += [
        (H_TOPIC, coords.topic.encode()),
        (H_PARTITION, str(coords.partition).encode()),
        (H_OFFSET, str(coords.offset).encode()),
        (H_CODE, code.encode()),
        (H_ERROR_MESSAGE, _text(message)),
    ]
    headers += _common(coords, key, medcorr_version, model_version)
    # Kafka clients refuse a record with neither key nor value (a keyless tombstone from a non-Java-style
    # producer): key it by the idempotency key so the dead letter can still be written.
    record_key = original_key if original_key is not None or original_value is not None else key.encode()
    return OutRecord(topic, record_key, original_value, headers, dead_letter=True, code=code)


def header_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers as ``{name: text}`` (last value wins), for tests and tools reading the topics."""
    return {name: (value or b"").decode("utf-8", "replace") for name, value in (headers or [])}
