"""The identifiers of medcorr's FHIR output (code systems, extension URLs) and the one-line description
of a validation error. Both :mod:`medcorr.fhir` (the mapping) and :mod:`medcorr.fhir_profile` (the output
profile) read them from here, so neither imports the other's module for them."""
from __future__ import annotations

import re
from typing import Any

#: The medcorr CodeSystem for ``DetectedIssue.code``: one code per :class:`ErrorType` (its ``value``).
CODE_SYSTEM = "https://medcorr.dev/fhir/CodeSystem/error-type"
#: A second ``DetectedIssue.code`` coding for errors asserted by an evidence check: the check's kind.
CHECK_CODE_SYSTEM = "https://medcorr.dev/fhir/CodeSystem/check-kind"
#: Extension on each ``DetectedIssue``: character offsets, score, sentence index, span text, the asserting
#: sources and their reasons, and every span of the note a source cites (``evidenceSpan``, ``start-end``).
FINDING_EXTENSION = "https://medcorr.dev/fhir/StructureDefinition/finding"
#: Extension in ``Bundle.meta.extension``: note-level flag, score, model and medcorr version, source.
VERDICT_EXTENSION = "https://medcorr.dev/fhir/StructureDefinition/verdict"


def fold_space(text: str) -> str:
    """``text`` on one line, whitespace folded."""
    return re.sub(r"\s+", " ", str(text)).strip()


def one_line(text: str) -> str:
    """``text`` on one line, whitespace folded, at most 200 characters."""
    return fold_space(text)[:200]


def describe_validation_error(error: Any, limit: int = 3) -> str:
    """The first ``limit`` problems of a pydantic ``ValidationError`` as ``path: rule``; never the values."""
    problems = []
    for item in error.errors(include_input=False, include_url=False, include_context=False)[:limit]:
        location = ".".join(str(part) for part in item.get("loc", ()))
        problems.append(f"{location or '(root)'}: {one_line(item.get('msg', ''))}")
    more = f" (+{error.error_count() - limit} more)" if error.error_count() > limit else ""
    return "; ".join(problems) + more
