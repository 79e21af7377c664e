"""A deterministic stand-in for the medcorr component, for connector tests that need exact control.

Registers the spaCy factory ``medcorr_test_fake`` (added under the pipe name ``medcorr`` so that
``model_version`` is read the same way as from the real component). A note is flagged when it contains one
of :data:`WRONG` (the finding proposes the right term); a note containing :data:`CRASH_MARKER` makes the
component raise (to exercise the pipeline-error dead-letter path); ``delay`` seconds are spent per note.
Usable as ``medcorr stream --code tests/stream_fake_pipeline.py --pipeline-config tests/data/stream_fake.cfg``.
"""

import re
import time

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from medcorr.finding import Evidence, Role, SourceKind, Status, ErrorType, Finding, Verdict

CRASH_MARKER = "MEDCORR-TEST-CRASH"
MODEL_VERSION = "fake-1"

#: wrong term -> (right term, error type, score)
WRONG: dict[str, tuple[str, ErrorType, float]] = {
    "amoxicillin": ("oseltamivir", ErrorType.PHARMACOTHERAPY, 0.93),
    "streptococcus": ("staphylococcus", ErrorType.CAUSAL_ORGANISM, 0.72),
    "appendectomy": ("cholecystectomy", ErrorType.MANAGEMENT, 0.55),
}

# Use the real component's ``Doc._.medcorr`` extension (a getter over SpanGroup attrs) rather than
# registering a competing one: both can then live in one test session.
from medcorr.component import VERDICT_ATTR, register_extensions  # noqa: E402

register_extensions()


#: The fake pipeline plays a verifier: its findings are asserted errors with this source.
FAKE_SOURCE = Evidence(SourceKind.VERIFIER, "fake verifier", reason="scripted", confidence=0.9)


class FakeMedcorr:
    """Rule-based verdicts with the real data model (:class:`Verdict` / :class:`Finding`)."""

    model_version = MODEL_VERSION

    def __init__(self, delay: float = 0.0, threshold: float = 0.5, lookahead: bool = False) -> None:
        self.delay = delay
        self.threshold = threshold
        self.lookahead = lookahead

    def __call__(self, doc: Doc) -> Doc:
        if self.delay:
            time.sleep(self.delay)
        text = doc.text
        if CRASH_MARKER in text:
            raise RuntimeError("fake component failure")
        findings = []
        for wrong, (right, error_type, score) in WRONG.items():
            for match in re.finditer(re.escape(wrong), text, flags=re.IGNORECASE):
                sentence_start = text.rfind(".", 0, match.start()) + 1
                sentence_end = text.find(".", match.end())
                sentence_end = len(text) if sentence_end < 0 else sentence_end + 1
                sentence = text[sentence_start:sentence_end].strip()
                findings.append(
                    Finding(
                        start=match.start(), end=match.end(), text=match.group(0), type=error_type, score=score,
                        sentence=text[:match.start()].count("."), role=Role.ERROR, correction=right,
                        corrected_sentence=re.sub(re.escape(wrong), right, sentence, flags=re.IGNORECASE),
                        correction_source=FAKE_SOURCE.name, evidence=[FAKE_SOURCE],
                    )
                )
        score = max((f.score for f in findings), default=0.05)
        flag = score >= self.threshold
        verdict = Verdict(
            status=Status.CHECKED, flag=flag, score=score, source=FAKE_SOURCE,
            error_sentence=findings[0].sentence if flag and findings else -1, findings=findings if flag else [],
        )
        doc.spans["medcorr"] = []
        doc.spans["medcorr"].attrs[VERDICT_ATTR] = verdict.to_dict()
        return doc

    def pipe(self, docs, batch_size: int = 32):
        """Doc by doc; with ``lookahead``, like the real component: a batch is yielded only after the
        next one has been pulled from upstream (the real one runs its model meanwhile)."""
        if not self.lookahead:
            for doc in docs:
                yield self(doc)
            return
        held: list[Doc] = []
        for batch in minibatch(docs, size=batch_size):
            done = [self(doc) for doc in batch]
            yield from held
            held = done
        yield from held


@Language.factory("medcorr_test_fake", default_config={"delay": 0.0, "threshold": 0.5, "lookahead": False})
def make_fake(nlp: Language, name: str, delay: float, threshold: float, lookahead: bool) -> FakeMedcorr:
    """Factory of the fake component."""
    return FakeMedcorr(delay=delay, threshold=threshold, lookahead=lookahead)


def fake_nlp(delay: float = 0.0, threshold: float = 0.5, lookahead: bool = False) -> Language:
    """A blank English pipeline with the fake component under the name ``medcorr``."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr_test_fake", name="medcorr",
                 config={"delay": delay, "threshold": threshold, "lookahead": lookahead})
    return nlp
