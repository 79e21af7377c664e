"""FHIR in and out: note text from a ``DocumentReference``, findings as ``DetectedIssue`` resources.

Input side
    :func:`read_notes` turns one message value (bytes of a FHIR ``DocumentReference`` or a ``Bundle`` of
    them, R4 or R5 JSON) into :class:`NoteInput` items; :func:`document_text` extracts the note text of one
    ``DocumentReference``. Every way an input can be unusable is a subclass of :class:`BadInputError` with a
    stable machine-readable :attr:`~BadInputError.code` (see :data:`ERROR_CODES`). Error messages never
    contain note text: only field paths, content types, sizes and resource types.

    Text is taken from ``content[].attachment.data`` (base64, charset from ``contentType``, UTF-8 when
    absent). A ``text/plain`` attachment is preferred; ``text/html`` (or ``application/xhtml+xml``) is used
    when there is no plain-text one and is stripped to text with the stdlib :mod:`html.parser`. Attachments
    that only carry a ``url`` are not fetched (v1). An attachment without ``contentType`` is read as
    ``text/plain``.

Output side
    :func:`verdict_to_bundle` maps a :class:`medcorr.finding.Verdict` to a FHIR ``Bundle`` of type
    ``collection`` holding one ``DetectedIssue`` per asserted error of a flagged verdict (status
    ``preliminary``, ``code`` from :data:`CODE_SYSTEM`, ``severity`` from the kind of source that asserted
    it (:data:`SEVERITY_BY_SOURCE`), ``implicated`` and ``evidence.detail`` referencing the versioned
    source ``DocumentReference``, ``detail`` = the correction only when the asserting source produced one;
    offsets, confidence, source name and reason in the :data:`FINDING_EXTENSION` extension). Claims to
    double-check are never DetectedIssues. Every Bundle carries the :data:`VERDICT_EXTENSION` in
    ``Bundle.meta.extension`` (a Bundle has no ``extension`` element of its own) with the note's status,
    the flag when a source judged the note (absent when nothing did), the judging source, model version
    and source reference, so a clean note gives an empty Bundle that says "checked, clean" and an unjudged
    one an empty Bundle that says so. Every output is checked against medcorr's output profile
    (:mod:`medcorr.fhir_profile`), which accepts only Bundles that the ``fhir.resources`` classes
    (``fhir.resources.R4B`` for R4, top-level ``fhir.resources`` for R5) accept;
    ``validation="classes"`` validates with those classes themselves.

The source note is never modified; ids in the output are derived deterministically (UUIDv5) from the
source reference / idempotency key and the model version, so a re-delivered note gives a byte-identical
Bundle.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import uuid
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from typing import Any, Iterator, Literal

from medcorr.fhir_terms import (  # noqa: F401  (part of this module's API)
    CHECK_CODE_SYSTEM,
    CODE_SYSTEM,
    FINDING_EXTENSION,
    VERDICT_EXTENSION,
    describe_validation_error,
)
from medcorr.fhir_terms import fold_space as _fold_space
from medcorr.fhir_terms import one_line as _one_line
from medcorr.fhir_profile import check_output_bundle
from medcorr.finding import ErrorType, Finding, SourceKind, Verdict

FhirVersion = Literal["R4", "R5"]
FHIR_VERSIONS: tuple[str, ...] = ("R4", "R5")
#: How :func:`verdict_to_bundle` validates its output: medcorr's output profile, or the full classes.
OutputValidation = Literal["profile", "classes"]
OUTPUT_VALIDATIONS: tuple[str, ...] = ("profile", "classes")

#: Default limit on the decoded size of one note (bytes of the attachment, before charset decoding).
DEFAULT_MAX_NOTE_BYTES = 1024 * 1024

#: Namespace for the deterministic (UUIDv5) ids of output Bundles and DetectedIssues.
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://medcorr.dev/fhir")

#: ``DetectedIssue.severity`` by the kind of source that asserted the error: a conflict the note itself
#: proves (both spans cited) is ``high``; a verifier's judgement ``moderate``; a detector head's ``low``.
SEVERITY_BY_SOURCE: dict[SourceKind, str] = {
    SourceKind.CHECK: "high",
    SourceKind.VERIFIER: "moderate",
    SourceKind.DETECTOR: "low",
}

ERROR_TYPE_DISPLAY: dict[ErrorType, str] = {
    ErrorType.DIAGNOSIS: "Diagnosis error",
    ErrorType.MANAGEMENT: "Management error",
    ErrorType.TREATMENT: "Treatment error",
    ErrorType.PHARMACOTHERAPY: "Pharmacotherapy error",
    ErrorType.CAUSAL_ORGANISM: "Causal organism error",
}

PLAIN_TYPES = ("text/plain",)
HTML_TYPES = ("text/html", "application/xhtml+xml")


# --------------------------------------------------------------------------------------------------
# Typed input errors
# --------------------------------------------------------------------------------------------------


class BadInputError(ValueError):
    """An input that cannot be checked. ``code`` is stable and machine-readable; the message has no note text."""

    code = "BAD_INPUT"


class TombstoneError(BadInputError):
    """The message value is null (a Kafka tombstone)."""

    code = "TOMBSTONE"


class NotUtf8Error(BadInputError):
    """The message bytes are not UTF-8."""

    code = "NOT_UTF8"


class NotJsonError(BadInputError):
    """The message is not JSON."""

    code = "NOT_JSON"


class NotFhirError(BadInputError):
    """JSON, but not a FHIR resource (not an object, or no ``resourceType``)."""

    code = "NOT_FHIR"


class WrongResourceTypeError(BadInputError):
    """A FHIR resource other than a ``DocumentReference`` (or a ``Bundle`` of them)."""

    code = "WRONG_RESOURCE_TYPE"


class InvalidFhirError(BadInputError):
    """A ``DocumentReference``/``Bundle`` that does not validate against the configured FHIR version."""

    code = "INVALID_FHIR"


class EmptyBundleError(BadInputError):
    """A ``Bundle`` with no entries."""

    code = "EMPTY_BUNDLE"


class NoContentError(BadInputError):
    """A ``DocumentReference`` without any ``content[].attachment``."""

    code = "NO_CONTENT"


class UrlOnlyError(BadInputError):
    """Only ``attachment.url`` is given; attachments are not fetched in this version."""

    code = "URL_ONLY"


class UnsupportedContentTypeError(BadInputError):
    """Inline data, but no text content type (PDF, image, RTF ...)."""

    code = "UNSUPPORTED_CONTENT_TYPE"


class InvalidBase64Error(BadInputError):
    """``attachment.data`` is not valid base64."""

    code = "INVALID_BASE64"


class UnsupportedCharsetError(BadInputError):
    """The ``charset`` of ``contentType`` is unknown to Python."""

    code = "UNSUPPORTED_CHARSET"


class TextDecodeError(BadInputError):
    """The attachment bytes do not decode with the declared (or default UTF-8) charset."""

    code = "TEXT_DECODE_ERROR"


class EmptyNoteError(BadInputError):
    """The note text is empty or whitespace only."""

    code = "EMPTY_NOTE"


class NoteTooLargeError(BadInputError):
    """The decoded attachment is larger than the configured limit."""

    code = "NOTE_TOO_LARGE"


#: Every input error code, for documentation, metrics labels and tests.
ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        TombstoneError,
        NotUtf8Error,
        NotJsonError,
        NotFhirError,
        WrongResourceTypeError,
        InvalidFhirError,
        EmptyBundleError,
        NoContentError,
        UrlOnlyError,
        UnsupportedContentTypeError,
        InvalidBase64Error,
        UnsupportedCharsetError,
        TextDecodeError,
        EmptyNoteError,
        NoteTooLargeError,
    )
)


# --------------------------------------------------------------------------------------------------
# Input: message bytes -> notes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRef:
    """Where a note came from: the ``DocumentReference`` id and version (either may be absent).

    ``full_url`` is the Bundle entry's ``fullUrl`` (used as the reference when the resource has no id);
    ``subject`` is the ``DocumentReference.subject`` reference dict, copied to the DetectedIssues.
    """

    id: str | None = None
    version_id: str | None = None
    full_url: str | None = None
    subject: dict[str, Any] | None = None

    @property
    def reference(self) -> str | None:
        """``DocumentReference/{id}/_history/{versionId}`` (or without ``_history``), else ``fullUrl``."""
        if self.id:
            if self.version_id:
                return f"DocumentReference/{self.id}/_history/{self.version_id}"
            return f"DocumentReference/{self.id}"
        return self.full_url

    def to_reference(self, display: str | None = None) -> dict[str, Any]:
        """A FHIR ``Reference`` dict to the source (``display`` only when there is nothing to point at)."""
        reference = self.reference
        if reference:
            return {"reference": reference}
        return {"display": display or "DocumentReference without id"}

    @classmethod
    def from_resource(cls, resource: dict[str, Any], full_url: str | None = None) -> "SourceRef":
        """The source of a ``DocumentReference`` JSON dict."""
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        subject = resource.get("subject") if isinstance(resource.get("subject"), dict) else None
        rid = resource.get("id")
        version = meta.get("versionId")
        return cls(
            id=str(rid) if isinstance(rid, str) and rid else None,
            version_id=str(version) if isinstance(version, str) and version else None,
            full_url=full_url if isinstance(full_url, str) and full_url else None,
            subject=subject,
        )


@dataclass
class NoteInput:
    """One note to check from a message: ``text`` is set, or ``error`` says why it cannot be checked.

    ``entry`` is the index in the input Bundle (None for a bare ``DocumentReference``); ``entries`` the
    number of entries of that Bundle (None for a bare one).
    """

    entry: int | None
    entries: int | None
    source: SourceRef
    text: str | None = None
    error: BadInputError | None = None


def parse_resource(value: bytes | bytearray | memoryview | str | None) -> dict[str, Any]:
    """Decode a message value to a FHIR resource JSON dict (``TOMBSTONE``/``NOT_UTF8``/``NOT_JSON``/``NOT_FHIR``)."""
    if value is None:
        raise TombstoneError("null message value (tombstone); nothing to check")
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as error:
            raise NotUtf8Error(f"message is not UTF-8 (invalid byte at position {error.start})") from None
    if value.startswith("\ufeff"):
        value = value[1:]
    try:
        data = json.loads(value)
    except json.JSONDecodeError as error:
        raise NotJsonError(f"message is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except RecursionError:
        raise NotJsonError("message is not JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise NotFhirError(f"JSON {type(data).__name__} is not a FHIR resource (expected an object)")
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise NotFhirError("JSON object has no 'resourceType'; not a FHIR resource")
    return data


def read_notes(
    value: bytes | bytearray | memoryview | str | None,
    fhir_version: FhirVersion = "R4",
    max_note_bytes: int = DEFAULT_MAX_NOTE_BYTES,
) -> list[NoteInput]:
    """The notes of one message: a ``DocumentReference`` gives one item, a ``Bundle`` one per entry.

    Raises a :class:`BadInputError` when the message as a whole is unusable (tombstone, not UTF-8, not
    JSON, not FHIR, another resource type, an invalid or empty Bundle). Problems of a single note are
    returned as items with ``error`` set, so a Bundle with one bad entry still yields its good ones.
    """
    data = parse_resource(value)
    resource_type = data["resourceType"]
    if resource_type == "DocumentReference":
        return [_note_input(data, None, None, None, fhir_version, max_note_bytes)]
    if resource_type != "Bundle":
        raise WrongResourceTypeError(
            f"resourceType {_safe_name(resource_type)} is not DocumentReference or a Bundle of them"
        )
    entries = data.get("entry")
    if entries is None or entries == []:
        raise EmptyBundleError("Bundle has no entries")
    if not isinstance(entries, list):
        raise InvalidFhirError("Bundle.entry is not a list")
    notes: list[NoteInput] = []
    total = len(entries)
    for index, entry in enumerate(entries):
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            error: BadInputError = NotFhirError(f"Bundle.entry[{index}] has no resource")
            notes.append(NoteInput(index, total, SourceRef(full_url=full_url), error=error))
            continue
        entry_type = resource.get("resourceType")
        if entry_type != "DocumentReference":
            error = WrongResourceTypeError(
                f"Bundle.entry[{index}].resource is {_safe_name(entry_type)}, not DocumentReference"
            )
            notes.append(
                NoteInput(index, total, SourceRef.from_resource(resource, full_url), error=error)
            )
            continue
        notes.append(_note_input(resource, index, total, full_url, fhir_version, max_note_bytes))
    return notes


def _note_input(
    resource: dict[str, Any],
    entry: int | None,
    entries: int | None,
    full_url: str | None,
    fhir_version: FhirVersion,
    max_note_bytes: int,
) -> NoteInput:
    source = SourceRef.from_resource(resource, full_url)
    try:
        text = document_text(resource, max_note_bytes=max_note_bytes)
        validate_document(resource, fhir_version)
    except BadInputError as error:
        return NoteInput(entry, entries, source, error=error)
    return NoteInput(entry, entries, source, text=text)


def validate_document(resource: dict[str, Any], fhir_version: FhirVersion = "R4") -> Any:
    """Validate a ``DocumentReference`` dict with the ``fhir.resources`` class of ``fhir_version``.

    Returns the model; raises :class:`InvalidFhirError` with the failing field paths (never the values).
    """
    from pydantic import ValidationError

    cls = _fhir_class("documentreference", "DocumentReference", fhir_version)
    try:
        return cls.model_validate(resource)
    except ValidationError as error:
        raise InvalidFhirError(
            f"not a valid FHIR {fhir_version} DocumentReference: {describe_validation_error(error)}"
        ) from None


def document_text(resource: Any, max_note_bytes: int = DEFAULT_MAX_NOTE_BYTES) -> str:
    """The note text of a ``DocumentReference`` (JSON dict or ``fhir.resources`` model).

    Raises :class:`NoContentError`, :class:`UrlOnlyError`, :class:`UnsupportedContentTypeError`,
    :class:`InvalidBase64Error`, :class:`UnsupportedCharsetError`, :class:`TextDecodeError`,
    :class:`NoteTooLargeError`, :class:`EmptyNoteError`, or :class:`InvalidFhirError` for a malformed
    ``content`` structure. The first ``text/plain`` attachment with data wins, then the first HTML one.
    """
    if hasattr(resource, "model_dump"):
        resource = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    if not isinstance(resource, dict):
        raise NotFhirError("not a FHIR resource")
    content = resource.get("content")
    if content is None or content == []:
        raise NoContentError("DocumentReference has no content")
    if not isinstance(content, list):
        raise InvalidFhirError("DocumentReference.content is not a list")
    plain: list[tuple[int, dict[str, Any]]] = []
    html: list[tuple[int, dict[str, Any]]] = []
    other_types: list[str] = []
    url_only = 0
    attachments = 0
    for index, item in enumerate(content):
        attachment = item.get("attachment") if isinstance(item, dict) else None
        if attachment is None:
            continue
        if not isinstance(attachment, dict):
            raise InvalidFhirError(f"DocumentReference.content[{index}].attachment is not an object")
        attachments += 1
        media_type, _ = _parse_content_type(attachment.get("contentType"))
        if attachment.get("data") in (None, ""):
            if attachment.get("url"):
                url_only += 1
            continue
        if media_type in PLAIN_TYPES:
            plain.append((index, attachment))
        elif media_type in HTML_TYPES:
            html.append((index, attachment))
        else:
            other_types.append(media_type)
    if attachments == 0:
        raise NoContentError("DocumentReference.content has no attachment")
    chosen = plain[0] if plain else html[0] if html else None
    if chosen is None:
        if other_types:
            raise UnsupportedContentTypeError(
                "no text/plain or text/html attachment with data; content types: "
                + ", ".join(sorted(set(_safe_name(t) for t in other_types)))
            )
        if url_only:
            raise UrlOnlyError(
                "attachment has only a url; fetching attachment URLs is not supported in this version "
                "(send the note inline as base64 attachment.data)"
            )
        raise NoContentError("DocumentReference.content has no attachment data")
    index, attachment = chosen
    media_type, charset = _parse_content_type(attachment.get("contentType"))
    raw = _decode_base64(attachment.get("data"), index, max_note_bytes)
    text = _decode_text(raw, charset, index)
    if media_type in HTML_TYPES:
        text = html_to_text(text)
    if not text.strip():
        raise EmptyNoteError(f"note text in content[{index}] is empty")
    return text


def _parse_content_type(value: Any) -> tuple[str, str | None]:
    """``(media type, charset)``; a missing content type is ``text/plain``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "text/plain", None
    if not isinstance(value, str):
        raise InvalidFhirError("attachment.contentType is not a string")
    media_type = value.split(";", 1)[0].strip().lower()
    charset = None
    if ";" in value:
        message = Message()
        message["content-type"] = value
        param = message.get_param("charset")
        if isinstance(param, tuple):  # RFC 2231 encoded parameter
            param = param[2]
        charset = str(param).strip() if param else None
    return media_type, charset


def _decode_base64(data: Any, index: int, max_note_bytes: int) -> bytes:
    if not isinstance(data, str):
        raise InvalidBase64Error(f"content[{index}].attachment.data is not a base64 string")
    compact = re.sub(r"\s+", "", data)
    if (len(compact) // 4) * 3 - 2 > max_note_bytes:
        raise NoteTooLargeError(
            f"note in content[{index}] is about {len(compact) // 4 * 3} bytes; limit is {max_note_bytes}"
        )
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBase64Error(f"content[{index}].attachment.data is not valid base64") from None
    if len(raw) > max_note_bytes:
        raise NoteTooLargeError(f"note in content[{index}] is {len(raw)} bytes; limit is {max_note_bytes}")
    return raw


def _decode_text(raw: bytes, charset: str | None, index: int) -> str:
    name = charset or "utf-8"
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise UnsupportedCharsetError(f"content[{index}] charset {_safe_name(name)} is not supported") from None
    try:
        text = raw.decode(codec.name)
    except (UnicodeDecodeError, ValueError) as error:
        position = getattr(error, "start", "?")
        raise TextDecodeError(
            f"content[{index}] is not valid {codec.name} (invalid byte at position {position})"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML document; drops script/style; line breaks at block elements."""

    BLOCK = {
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
        "section", "article", "header", "footer", "blockquote", "pre", "dt", "dd", "hr", "title",
    }
    SKIP = {"script", "style", "head", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML/XHTML note: tags dropped, entities decoded, whitespace tidied per line."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = (re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in "".join(parser.parts).split("\n"))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _safe_name(value: Any) -> str:
    """A short printable rendering of a type name from the input (never long free text)."""
    text = str(value) if value is not None else "(none)"
    text = re.sub(r"[^A-Za-z0-9_.+\-/]", "?", text)
    return text[:64]


# --------------------------------------------------------------------------------------------------
# Output: verdict -> Bundle of DetectedIssues
# --------------------------------------------------------------------------------------------------


def severity_of(finding: Finding) -> str:
    """The severity of an asserted error: the highest of its sources' (:data:`SEVERITY_BY_SOURCE`)."""
    order = ("high", "moderate", "low")
    levels = [SEVERITY_BY_SOURCE[item.kind] for item in finding.evidence] or ["low"]
    return min(levels, key=order.index)


def _fhir_class(module: str, name: str, fhir_version: str) -> Any:
    import importlib

    if fhir_version not in FHIR_VERSIONS:
        raise ValueError(f"unknown FHIR version {fhir_version!r}; expected one of {', '.join(FHIR_VERSIONS)}")
    package = "fhir.resources.R4B" if fhir_version == "R4" else "fhir.resources"
    return getattr(importlib.import_module(f"{package}.{module}"), name)


def _decimal(value: float) -> float:
    return round(float(value), 6)


def _finding_extension(finding: Finding) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "start", "valueInteger": int(finding.start)},
        {"url": "end", "valueInteger": int(finding.end)},
        {"url": "score", "valueDecimal": _decimal(finding.score)},
        {"url": "sentence", "valueInteger": int(finding.sentence)},
    ]
    if finding.text:
        parts.append({"url": "text", "valueString": str(finding.text)})
    if finding.corrected_sentence and finding.correction_source:
        parts.append({"url": "correctedSentence", "valueString": str(finding.corrected_sentence)})
    for item in finding.evidence:
        parts.append({"url": "assertedBy", "valueString": f"{item.kind.value}: {item.name}"})
        if item.reason:
            parts.append({"url": "reason", "valueString": _one_line(item.reason)})
        parts += [{"url": "evidenceSpan", "valueString": f"{int(start)}-{int(end)}"} for start, end in item.spans]
    return {"url": FINDING_EXTENSION, "extension": parts}


def _check_codings(finding: Finding) -> list[dict[str, Any]]:
    """One coding per evidence check that asserted ``finding`` (its kind, from :data:`CHECK_CODE_SYSTEM`)."""
    kinds = [item.name.removeprefix("check.") for item in finding.evidence if item.kind is SourceKind.CHECK]
    return [{"system": CHECK_CODE_SYSTEM, "code": kind, "display": kind.replace("_", " ")} for kind in kinds]


def _verdict_extension(
    verdict: Verdict, source: dict[str, Any], model_version: str, medcorr_version: str
) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "status", "valueString": verdict.status.value}]
    if verdict.flag is not None:
        parts.append({"url": "flag", "valueBoolean": bool(verdict.flag)})
    if verdict.score is not None:
        parts.append({"url": "score", "valueDecimal": _decimal(verdict.score)})
    if verdict.source is not None:
        parts.append({"url": "judgedBy", "valueString": f"{verdict.source.kind.value}: {verdict.source.name}"})
    parts += [
        {"url": "findings", "valueInteger": len(verdict.findings) if verdict.flag else 0},
        {"url": "claims", "valueInteger": len(verdict.claims)},
        {"url": "modelVersion", "valueString": str(model_version or "unknown")},
        {"url": "medcorrVersion", "valueString": medcorr_version},
        {"url": "source", "valueReference": dict(source)},
    ]
    return {"url": VERDICT_EXTENSION, "extension": parts}


def verdict_to_bundle(
    verdict: Verdict,
    source_ref: SourceRef | str,
    fhir_version: FhirVersion = "R4",
    model_version: str = "unknown",
    *,
    idempotency_key: str | None = None,
    validation: OutputValidation = "profile",
) -> dict[str, Any]:
    """The FHIR ``Bundle`` (type ``collection``, JSON dict) for one checked note.

    ``source_ref`` is a :class:`SourceRef` or a reference string (``DocumentReference/1/_history/2``).
    A flagged verdict gives one ``DetectedIssue`` per asserted error (``verdict.findings``, each with its
    evidence); any other verdict an empty Bundle. Claims (``verdict.claims``) never become DetectedIssues. Either way
    ``Bundle.meta.extension`` holds the :data:`VERDICT_EXTENSION`. ``idempotency_key`` (default: the
    source reference) seeds the deterministic UUIDv5 ids, together with ``model_version``. The Bundle is
    plain JSON (dicts, lists, str, int, float, bool) and no two of its parts are the same object.

    ``validation="profile"`` (default) checks the Bundle against medcorr's output profile
    (:mod:`medcorr.fhir_profile`: exact shape, fhir_core's primitive types, about 0.01 ms);
    ``"classes"`` validates it with the full ``fhir.resources`` classes (:func:`validate_with_classes`,
    about 1 ms). Either raises when the Bundle is invalid.
    """
    from medcorr import __version__

    if isinstance(source_ref, str):
        if source_ref.startswith("DocumentReference/"):
            source_ref = _ref_from_string(source_ref)
        else:
            source_ref = SourceRef(full_url=source_ref)
    source = source_ref.to_reference(display=idempotency_key)
    seed = f"{idempotency_key or source_ref.reference or uuid.uuid4()}|{model_version}"
    bundle_id = str(uuid.uuid5(ID_NAMESPACE, seed))
    author = {"display": f"medcorr {__version__} (model {model_version or 'unknown'})"}

    if fhir_version not in FHIR_VERSIONS:
        raise ValueError(f"unknown FHIR version {fhir_version!r}; expected one of {', '.join(FHIR_VERSIONS)}")
    if validation not in OUTPUT_VALIDATIONS:
        raise ValueError(f"unknown validation {validation!r}; expected one of {', '.join(OUTPUT_VALIDATIONS)}")
    entries = []
    findings = [finding for finding in verdict.findings if finding.is_error and finding.evidence] if verdict.flag else []
    for index, finding in enumerate(findings):
        error_type = ErrorType(finding.type)
        issue: dict[str, Any] = {
            "resourceType": "DetectedIssue",
            "id": str(uuid.uuid5(ID_NAMESPACE, f"{seed}#{index}")),
            "extension": [_finding_extension(finding)],
            "status": "preliminary",
            "code": {
                "coding": [
                    {
                        "system": CODE_SYSTEM,
                        "code": error_type.value,
                        "display": ERROR_TYPE_DISPLAY[error_type],
                    },
                    *_check_codings(finding),
                ],
                "text": ERROR_TYPE_DISPLAY[error_type],
            },
            "severity": severity_of(finding),
            "author": dict(author),
            "implicated": [dict(source)],
            "evidence": [{"detail": [dict(source)]}],
        }
        subject = _subject(source_ref, fhir_version)
        if subject:
            issue["patient" if fhir_version == "R4" else "subject"] = subject
        if finding.correction_source and (finding.corrected_sentence or finding.correction):
            issue["detail"] = _fold_space(f"{finding.corrected_sentence or finding.correction} "
                                        f"(correction from {finding.correction_source})")
        entries.append({"fullUrl": f"urn:uuid:{issue['id']}", "resource": issue})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"extension": [_verdict_extension(verdict, source, model_version, __version__)]},
        "type": "collection",
    }
    if entries:
        bundle["entry"] = entries
    if validation == "profile":
        check_output_bundle(bundle, fhir_version)
    else:
        validate_with_classes(bundle, fhir_version)
    return bundle


def validate_with_classes(bundle: dict[str, Any], fhir_version: FhirVersion = "R4") -> None:
    """Validate a medcorr output Bundle with the full ``fhir.resources`` classes of ``fhir_version``.

    Each ``DetectedIssue`` is validated with its own class (a ``Bundle`` does not check the type of
    ``entry.resource``), then the Bundle around the validated models. Raises pydantic's ``ValidationError``.
    """
    issue_cls = _fhir_class("detectedissue", "DetectedIssue", fhir_version)
    bundle_cls = _fhir_class("bundle", "Bundle", fhir_version)
    entries = bundle.get("entry") or []
    models = [issue_cls.model_validate(entry["resource"]) for entry in entries]
    bundle_cls.model_validate(
        {**bundle, "entry": [{**entry, "resource": model} for entry, model in zip(entries, models)] or None}
    )


def _ref_from_string(reference: str) -> SourceRef:
    parts = reference.split("/")
    if len(parts) >= 4 and parts[2] == "_history":
        return SourceRef(id=parts[1], version_id=parts[3])
    return SourceRef(id=parts[1] if len(parts) > 1 else None)


def _subject(source_ref: SourceRef, fhir_version: str) -> dict[str, Any] | None:
    subject = source_ref.subject
    if not subject or not isinstance(subject.get("reference"), str):
        return None
    reference = subject["reference"]
    if fhir_version == "R4" and not reference.startswith("Patient/"):
        return None  # R4 DetectedIssue.patient is Reference(Patient) only
    return {"reference": reference}


def error_type_code_system(fhir_version: FhirVersion = "R4") -> dict[str, Any]:
    """The medcorr ``CodeSystem`` resource for :data:`CODE_SYSTEM` (publish it beside the connector)."""
    from medcorr import __version__

    cls = _fhir_class("codesystem", "CodeSystem", fhir_version)
    model = cls.model_validate(
        {
            "resourceType": "CodeSystem",
            "id": "medcorr-error-type",
            "url": CODE_SYSTEM,
            "version": __version__,
            "name": "MedcorrErrorType",
            "title": "medcorr clinical-note error types",
            "status": "draft",
            "content": "complete",
            "caseSensitive": True,
            "description": "The five MEDEC error types that medcorr detects in clinical notes.",
            "concept": [
                {"code": error_type.value, "display": ERROR_TYPE_DISPLAY[error_type]} for error_type in ErrorType
            ],
        }
    )
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def iter_issue_findings(bundle: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Read back the findings of a medcorr Bundle: ``{type, start, end, score, severity, correction}``."""
    for entry in bundle.get("entry", []) or []:
        resource = entry.get("resource", {})
        if resource.get("resourceType") != "DetectedIssue":
            continue
        values: dict[str, Any] = {}
        for extension in resource.get("extension", []):
            if extension.get("url") == FINDING_EXTENSION:
                for part in extension.get("extension", []):
                    value = next((v for k, v in part.items() if k.startswith("value")), None)
                    values[part["url"]] = value
        coding = (resource.get("code") or {}).get("coding") or [{}]
        yield {
            "type": coding[0].get("code"),
            "start": values.get("start"),
            "end": values.get("end"),
            "score": values.get("score"),
            "severity": resource.get("severity"),
            "correction": resource.get("detail"),
        }


def bundle_verdict(bundle: dict[str, Any]) -> dict[str, Any]:
    """Read back the :data:`VERDICT_EXTENSION` of a medcorr Bundle as a dict (``{}`` when absent)."""
    for extension in (bundle.get("meta") or {}).get("extension", []):
        if extension.get("url") == VERDICT_EXTENSION:
            result = {}
            for part in extension.get("extension", []):
                result[part["url"]] = next((v for k, v in part.items() if k.startswith("value")), None)
            return result
    return {}
