"""The result of one fired evidence check."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medcorr.finding import ErrorType

__all__ = ["CheckResult"]


@dataclass
class CheckResult:
    """A documentation conflict proven from the note itself.

    ``kind`` names the check (``allergy_conflict``, ``pregnancy_contraindication``, ``sex_mismatch``,
    ``laterality_conflict``, ``presence_conflict``, ``duplicate_class``); ``error_type`` the MEDEC type it
    maps onto. ``start``/``end`` is the character span of the asserted error (e.g. the drug) and
    ``sentence`` the index (into the sentence spans the checks were given) of the sentence holding it.
    ``evidence_spans`` lists every cited span: the asserted span first, then the conflicting span(s).
    ``reason`` is a short plain-language explanation; ``correction`` / ``corrected_sentence`` are set only
    where the fix is defined (a flipped side), otherwise None.
    """

    kind: str
    error_type: ErrorType
    start: int
    end: int
    sentence: int
    evidence_spans: list[tuple[int, int]]
    reason: str
    correction: str | None = None
    corrected_sentence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"kind": self.kind, "error_type": self.error_type.value, "start": self.start, "end": self.end,
                "sentence": self.sentence, "evidence_spans": [[s, e] for s, e in self.evidence_spans],
                "reason": self.reason, "correction": self.correction,
                "corrected_sentence": self.corrected_sentence}
