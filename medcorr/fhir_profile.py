"""medcorr's output profile: the exact shape of the Bundles :func:`medcorr.fhir.verdict_to_bundle` writes.

Validating an output Bundle with the full ``fhir.resources`` classes builds one pydantic model per FHIR
element (about 28 per note on the broker tests' notes), each running fhir_core's Python validators over
every field of its class (an ``Extension`` has 55): 0.7 ms for a flagged note with one finding, about as
much as the rest of the streaming connector's per-note work together.
This profile checks the same JSON in one compiled pydantic-core pass (a few microseconds):

- the structure is exact: every object is a closed ``TypedDict`` (no other keys), fixed codes and URLs are
  ``Literal`` values, each sub-extension has its one ``value[x]`` of its one type;
- every value is checked with the primitive types of fhir_core, the package behind ``fhir.resources`` (the
  same patterns and ranges: a ``decimal`` must match the FHIR regex, so NaN and infinity fail; an
  ``integer`` is 32-bit; a ``string`` is not empty; an ``id`` matches ``[A-Za-z0-9\\-.]+``).

So the profile is stricter than FHIR: it accepts only medcorr's Bundles, and the tests check that every
Bundle it accepts also validates with the full classes (R4B and R5), and that it rejects the broken values
the classes reject. ``verdict_to_bundle(..., validation="classes")`` validates with the classes instead.

Error messages name field paths and the rule that failed, never the values (a span text is note text).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from fhir_core.types import BooleanType, CodeType, DecimalType, IdType, IntegerType, StringType, UriType
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict

from medcorr.fhir_terms import CHECK_CODE_SYSTEM, CODE_SYSTEM, FINDING_EXTENSION, VERDICT_EXTENSION, describe_validation_error
from medcorr.finding import ErrorType

ErrorTypeCode = Literal[tuple(error_type.value for error_type in ErrorType)]  # type: ignore[misc]
_CLOSED = ConfigDict(extra="forbid")


class OutputProfileError(ValueError):
    """A Bundle that is not of medcorr's output profile; the message has field paths, no values."""


@with_config(_CLOSED)
class Reference(TypedDict):
    reference: NotRequired[StringType]
    display: NotRequired[StringType]


def _sub_extension(url: str, value_key: str, value_type: Any) -> type:
    """A closed ``TypedDict`` for ``{"url": url, value_key: value}``."""
    fields = {"url": Literal[url], value_key: value_type}  # type: ignore[valid-type]
    return with_config(_CLOSED)(TypedDict(f"Extension_{url}", fields))  # type: ignore[operator]


def _extension_list(*parts: type) -> Any:
    return list[Annotated[Union[parts], Field(discriminator="url")]]  # type: ignore[valid-type]


FindingParts = _extension_list(
    _sub_extension("start", "valueInteger", IntegerType),
    _sub_extension("end", "valueInteger", IntegerType),
    _sub_extension("score", "valueDecimal", DecimalType),
    _sub_extension("sentence", "valueInteger", IntegerType),
    _sub_extension("text", "valueString", StringType),
    _sub_extension("correctedSentence", "valueString", StringType),
    _sub_extension("assertedBy", "valueString", StringType),
    _sub_extension("reason", "valueString", StringType),
    _sub_extension("evidenceSpan", "valueString", StringType),
)
VerdictParts = _extension_list(
    _sub_extension("status", "valueString", StringType),
    _sub_extension("flag", "valueBoolean", BooleanType),
    _sub_extension("score", "valueDecimal", DecimalType),
    _sub_extension("judgedBy", "valueString", StringType),
    _sub_extension("findings", "valueInteger", IntegerType),
    _sub_extension("claims", "valueInteger", IntegerType),
    _sub_extension("modelVersion", "valueString", StringType),
    _sub_extension("medcorrVersion", "valueString", StringType),
    _sub_extension("source", "valueReference", Reference),
)


@with_config(_CLOSED)
class FindingExtension(TypedDict):
    url: Literal[FINDING_EXTENSION]  # type: ignore[valid-type]
    extension: FindingParts


@with_config(_CLOSED)
class VerdictExtension(TypedDict):
    url: Literal[VERDICT_EXTENSION]  # type: ignore[valid-type]
    extension: VerdictParts


@with_config(_CLOSED)
class ErrorTypeCoding(TypedDict):
    system: Literal[CODE_SYSTEM]  # type: ignore[valid-type]
    code: ErrorTypeCode
    display: StringType


@with_config(_CLOSED)
class CheckKindCoding(TypedDict):
    system: Literal[CHECK_CODE_SYSTEM]  # type: ignore[valid-type]
    code: CodeType
    display: StringType


Coding = Annotated[Union[ErrorTypeCoding, CheckKindCoding], Field(discriminator="system")]


@with_config(_CLOSED)
class CodeableConcept(TypedDict):
    coding: list[Coding]
    text: StringType


@with_config(_CLOSED)
class Evidence(TypedDict):
    detail: list[Reference]


@with_config(_CLOSED)
class _DetectedIssueBase(TypedDict):
    resourceType: Literal["DetectedIssue"]
    id: IdType
    extension: list[FindingExtension]
    status: Literal["preliminary"]
    code: CodeableConcept
    severity: Literal["high", "moderate", "low"]
    author: Reference
    implicated: list[Reference]
    evidence: list[Evidence]
    detail: NotRequired[StringType]


@with_config(_CLOSED)
class DetectedIssueR4(_DetectedIssueBase):
    patient: NotRequired[Reference]


@with_config(_CLOSED)
class DetectedIssueR5(_DetectedIssueBase):
    subject: NotRequired[Reference]


@with_config(_CLOSED)
class Meta(TypedDict):
    extension: list[VerdictExtension]


@with_config(_CLOSED)
class EntryR4(TypedDict):
    fullUrl: UriType
    resource: DetectedIssueR4


@with_config(_CLOSED)
class EntryR5(TypedDict):
    fullUrl: UriType
    resource: DetectedIssueR5


@with_config(_CLOSED)
class _BundleBase(TypedDict):
    resourceType: Literal["Bundle"]
    id: IdType
    meta: Meta
    type: Literal["collection"]


@with_config(_CLOSED)
class BundleR4(_BundleBase):
    entry: NotRequired[list[EntryR4]]


@with_config(_CLOSED)
class BundleR5(_BundleBase):
    entry: NotRequired[list[EntryR5]]


@lru_cache(maxsize=None)
def _adapter(fhir_version: str) -> TypeAdapter[Any]:
    if fhir_version == "R4":
        return TypeAdapter(BundleR4)
    if fhir_version == "R5":
        return TypeAdapter(BundleR5)
    raise ValueError(f"unknown FHIR version {fhir_version!r}; expected R4 or R5")


def check_output_bundle(bundle: dict[str, Any], fhir_version: str = "R4") -> None:
    """Raise :class:`OutputProfileError` unless ``bundle`` is of medcorr's output profile for the version."""
    try:
        _adapter(fhir_version).validate_python(bundle)
    except ValidationError as error:
        raise OutputProfileError(
            f"output Bundle is not of medcorr's FHIR {fhir_version} output profile: {describe_validation_error(error)}"
        ) from None
