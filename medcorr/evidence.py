"""Evidence: which sources may judge a note, and how their judgements become the verdict.

A flag is a statement about a patient's record, so only a source with measured discrimination may set it:
a verifier backend (a language model asked about the localised claims), an evidence check (a conflict the
note itself proves), or the detector's own verdict head when its model's metadata records a cross-validated
verdict AUC of at least :data:`DETECTOR_AUC_FLOOR`. Each source answers with a :class:`Judgement`;
:func:`combine` turns them into the verdict's status, flag, source and findings.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from medcorr.detector import NotePrediction
from medcorr.finding import Evidence, Finding, Role, SourceKind, Status

logger = logging.getLogger(__name__)

#: The cross-validated verdict AUC a detector model needs before its head may flag notes on its own.
#: Under the equal-variance binormal model, AUC = Phi(d'/sqrt 2) and the best accuracy on balanced classes
#: is Phi(d'/2): AUC 0.75 allows at most about 0.68 flag accuracy, about what a 32B-parameter language
#: model reaches on MEDEC (0.69). A weaker head would be wrong on about a third of the notes it judges or
#: more; the shipped head's 0.48 is chance.
DETECTOR_AUC_FLOOR = 0.75

#: Which source's assertion leads when several assert an error: a proven conflict, then a verifier, then
#: a detector head.
SOURCE_PRIORITY: tuple[SourceKind, ...] = (SourceKind.CHECK, SourceKind.VERIFIER, SourceKind.DETECTOR)


@dataclass
class Judgement:
    """One source's answer for one note.

    ``error``: True (an error is asserted; ``findings`` holds it, role ``error``), False (the source found
    no error), None (the source failed on this note; ``evidence.reason`` says why). ``score`` is the
    source's confidence that the note has an error (None when it failed).
    """

    evidence: Evidence
    error: bool | None
    score: float | None = None
    findings: list[Finding] = field(default_factory=list)


def asserted(claim: Finding, evidence: Evidence, **changes: Any) -> Finding:
    """An error finding on a claim's span (or a changed span), asserted by ``evidence``'s source."""
    return replace(claim, role=Role.ERROR, rank=0, score=float(evidence.confidence or 0.0),
                   alternatives=list(claim.alternatives), evidence=[evidence], **changes)


class DetectorHead:
    """The detector's verdict head as a judging source, trusted only with measured discrimination.

    ``meta`` is the model's metadata (``medcorr_model.json``); its ``validation.verdict_auc`` is the
    cross-validated AUC of the verdict score. The head judges when that AUC is at least ``floor``, or when
    the user set an explicit ``threshold`` (then a warning names the AUC).
    """

    def __init__(self, meta: dict[str, Any], threshold: float | None = None, floor: float = DETECTOR_AUC_FLOOR,
                 name: str = "medcorr.OnnxDetector.v1"):
        self.meta = meta
        self.floor = float(floor)
        self.explicit_threshold = threshold
        self.name = f"{name} model {meta.get('version', 'unknown')}"
        if threshold is not None and not self.measured_ok:
            message = (f"the detector's verdict head is forced on by an explicit threshold ({threshold}): its "
                       f"{self.measured}, and flagging needs at least {self.floor}; its flags may be noise")
            warnings.warn(message, UserWarning, stacklevel=3)
            logger.warning(message)

    @property
    def auc(self) -> float | None:
        """The model's cross-validated verdict AUC, None when its metadata records none."""
        value = (self.meta.get("validation") or {}).get("verdict_auc")
        return None if value is None else float(value)

    @property
    def measured(self) -> str:
        """What is known of the head's discrimination, in words."""
        validation = self.meta.get("validation") or {}
        if self.auc is None:
            return "verdict AUC was never measured (the model's metadata records none)"
        return f"cross-validated verdict AUC is {self.auc:.3f} ({validation.get('method', 'method not recorded')})"

    @property
    def measured_ok(self) -> bool:
        """True when the recorded AUC clears the floor."""
        return self.auc is not None and self.auc >= self.floor

    @property
    def trusted(self) -> bool:
        """True when the head judges notes (AUC at the floor or above, or an explicit threshold)."""
        return self.explicit_threshold is not None or self.measured_ok

    @property
    def threshold(self) -> float:
        """The verdict threshold in force (explicit, else the model's tuned one)."""
        if self.explicit_threshold is not None:
            return float(self.explicit_threshold)
        return float(self.meta.get("threshold", 0.5))

    def judge(self, prediction: NotePrediction, claims: Sequence[Finding]) -> Judgement | None:
        """The head's judgement on the best claim, or None when it is not trusted or there is no claim."""
        if not self.trusted or not claims:
            return None
        score = float(prediction.error[claims[0].sentence])
        evidence = Evidence(kind=SourceKind.DETECTOR, name=self.name, confidence=score, measured=self.measured,
                            reason=f"verdict score {score:.3f} against threshold {self.threshold:.3f}")
        if score < self.threshold:
            return Judgement(evidence=evidence, error=False, score=score)
        return Judgement(evidence=evidence, error=True, score=score, findings=[asserted(claims[0], evidence)])


@dataclass
class Decision:
    """What :func:`combine` decided for one note."""

    status: Status
    flag: bool | None = None
    score: float | None = None
    source: Evidence | None = None
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""

    @property
    def error_sentence(self) -> int:
        """The sentence of the leading asserted error, -1 when none."""
        return self.findings[0].sentence if self.flag and self.findings else -1


def combine(judgements: Sequence[Judgement], has_claims: bool, unjudged_reason: str) -> Decision:
    """The note's decision from its sources' judgements.

    Any asserted error flags the note (the highest-priority source leads, see :data:`SOURCE_PRIORITY`);
    otherwise a source that found no error clears it (the reason also names any source that failed, e.g. a
    verifier that timed out beside a trusted detector head); otherwise a failed source leaves it ``unverified``;
    otherwise nothing judged it (``claims_only``, or ``no_claims`` for a note without claims).
    """
    ordered = sorted(judgements, key=lambda j: SOURCE_PRIORITY.index(j.evidence.kind))
    errors = [j for j in ordered if j.error]
    if errors:
        findings = _distinct([finding for j in errors for finding in j.findings])
        lead = errors[0]
        return Decision(Status.CHECKED, flag=True, score=lead.score, source=lead.evidence, findings=findings,
                        reason=f"error asserted by {lead.evidence.name}")
    cleared = [j for j in ordered if j.error is False]
    failed = [j for j in ordered if j.error is None]
    failures = "; ".join(f"{j.evidence.name} failed: {j.evidence.reason}" for j in failed)
    if cleared:
        lead = cleared[0]
        return Decision(Status.CHECKED, flag=False, score=lead.score, source=lead.evidence,
                        reason="; ".join(filter(None, [f"no error found by {lead.evidence.name}", failures])))
    if failed:
        return Decision(Status.UNVERIFIED, reason=failures)
    if not has_claims:
        return Decision(Status.NO_CLAIMS, reason="the note states no claim medcorr can check")
    return Decision(Status.CLAIMS_ONLY, reason=unjudged_reason)


def _distinct(findings: Sequence[Finding]) -> list[Finding]:
    """Findings with distinct spans, the first kept (sources are already in priority order)."""
    seen: set[tuple[int, int]] = set()
    result = []
    for finding in findings:
        if (finding.start, finding.end) not in seen:
            seen.add((finding.start, finding.end))
            result.append(finding)
    return result
