"""Evidence checks: documentation conflicts medcorr proves from the note itself, without a language model.

Allergy conflicts, pregnancy contraindications, sex-impossible conditions and procedures, left/right
conflicts, findings stated present and denied, and therapeutic duplication. Knowledge is data
(``medcorr/data/knowledge/``, rebuilt with ``python -m medcorr.checks.build``); a site adds entries with
``extra_knowledge``. Usage::

    from medcorr.checks import EvidenceChecks
    checks = EvidenceChecks()                       # kinds on where measured precision met the target
    for result in checks(doc, sentence_spans):      # pure: the Doc is not modified
        print(result.kind, result.error_type, result.evidence_spans, result.reason)
"""
from medcorr.checks.checks import DEFAULT_ENABLED, KINDS, MEASURED, EvidenceChecks, make_evidence_checks
from medcorr.checks.knowledge import Knowledge
from medcorr.checks.result import CheckResult

__all__ = ["CheckResult", "DEFAULT_ENABLED", "EvidenceChecks", "KINDS", "Knowledge", "MEASURED",
           "make_evidence_checks"]
