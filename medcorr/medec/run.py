"""Running a medcorr pipeline on MEDEC records and turning verdicts into submission lines.

Each note becomes a Doc (``nlp.make_doc``) whose sentence boundaries are MEDEC's: every sentence of the
``Sentences`` column is aligned to its characters in ``Text`` and the first token it covers
(``doc.char_span(..., alignment_mode="expand")``) starts a sentence, every other token does not. The
medcorr component keeps boundaries already set, so ``doc._.medcorr.error_sentence`` indexes
``list(doc.sents)``, which the runner maps back to MEDEC sentence ids.

When two MEDEC sentences start inside the same token (a sentence split in the middle of ``mEq/L``), the
later one gets no boundary of its own: its tokens belong to the earlier sentence, and a flag on that Doc
sentence reports the earlier id.
"""
from __future__ import annotations

import sys
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from medcorr.finding import Verdict
from medcorr.medec.io import MedecFormatError, MedecRecord, SubmissionLine, align_sentences
from medcorr.pipeline import verdict_of, verifier_batch, verifier_of

#: What to write for a flagged text whose verdict has no corrected sentence: the original MEDEC
#: sentence unchanged (the official format reserves ``NA`` for texts without an error), or ``NA``.
NoProposal = Literal["original", "na"]

_USER_DATA_KEY = "medcorr.medec.boundaries"


@dataclass
class RunStats:
    """What :func:`run_medec` counted. ``verifier`` holds what the run cost the verifier (calls, prompt and
    completion tokens, cache hits, failures), None when the pipeline has no verifier."""

    notes: int = 0
    seconds: float = 0.0
    flagged: int = 0
    flagged_without_proposal: int = 0
    collapsed_sentences: int = 0
    verifier: dict[str, int] | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def notes_per_second(self) -> float:
        """Throughput over the whole run (0 when nothing ran)."""
        return self.notes / self.seconds if self.seconds > 0 else 0.0

    def verifier_per_note(self) -> dict[str, float] | None:
        """The verifier's counters per note (None without a verifier or notes)."""
        if self.verifier is None or self.notes == 0:
            return None
        return {key: value / self.notes for key, value in self.verifier.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON shape (no note content)."""
        data: dict[str, Any] = {
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "notes_per_second": round(self.notes_per_second, 3),
            "statuses": dict(sorted(self.statuses.items())),
            "flagged": self.flagged,
            "flagged_without_proposal": self.flagged_without_proposal,
            "collapsed_sentences": self.collapsed_sentences,
        }
        per_note = self.verifier_per_note()
        if self.verifier is not None:
            data["verifier"] = dict(self.verifier)
            data["verifier_per_note"] = {k: round(v, 3) for k, v in (per_note or {}).items()}
        return data


def make_medec_doc(nlp, record: MedecRecord):
    """The record's Doc with MEDEC's sentence boundaries set.

    Returns ``(doc, boundaries)`` where ``boundaries`` lists ``(token index, MEDEC sentence id)`` for every
    sentence start, in order (the first at token 0). Raises :class:`MedecFormatError` when the record has
    text but no sentences.
    """
    doc = nlp.make_doc(record.text)
    if len(doc) == 0:
        return doc, []
    if not record.sentences:
        raise MedecFormatError(f"row {record.row}: text {record.text_id!r} has no 'Sentences'")
    spans = align_sentences(record.text, [sentence.text for sentence in record.sentences])
    token_ends = [token.idx + len(token) for token in doc]
    boundaries: list[tuple[int, int]] = []
    for (start, end), sentence in zip(spans, record.sentences):
        if not boundaries:
            boundaries.append((0, sentence.id))  # text before the first sentence belongs to it
            continue
        span = doc.char_span(start, end, alignment_mode="expand") if end > start else None
        token = span.start if span is not None and len(span) else bisect_right(token_ends, start)
        if token >= len(doc) or token <= boundaries[-1][0]:
            continue  # no token of its own: merged into the previous sentence
        boundaries.append((token, sentence.id))
    starts = {token for token, _ in boundaries}
    for token in doc:
        token.is_sent_start = token.i in starts
    return doc, boundaries


def medec_sentence_id(boundaries: Sequence[tuple[int, int]], token_index: int) -> int:
    """The MEDEC id of the sentence that holds token ``token_index``."""
    position = bisect_right([token for token, _ in boundaries], token_index) - 1
    return boundaries[max(position, 0)][1]


def submission_line(
    doc, record: MedecRecord, boundaries: Sequence[tuple[int, int]], no_proposal: NoProposal = "original",
    verdict: Verdict | None = None,
) -> SubmissionLine:
    """The submission line for a processed Doc.

    Not flagged (no error asserted, or nothing judged the note): ``0 -1 NA``. Flagged: the MEDEC id of the
    asserted error's Doc sentence and the corrected sentence of its asserting source (see
    :func:`sourced_correction`); without one, the original MEDEC sentence (``no_proposal="original"``) or
    ``NA``. A flag without a sentence (``error_sentence == -1``) is written as ``1 -1 NA``. ``verdict`` is
    the Doc's verdict when the caller has already read it.
    """
    verdict = verdict if verdict is not None else verdict_of(doc)
    if not verdict.flag:
        return SubmissionLine(record.text_id, 0, -1, None)
    if verdict.error_sentence < 0 or not boundaries:
        return SubmissionLine(record.text_id, 1, -1, None)
    sentences = list(doc.sents)
    if verdict.error_sentence >= len(sentences):
        raise ValueError(
            f"text {record.text_id!r}: error_sentence {verdict.error_sentence} but the Doc has "
            f"{len(sentences)} sentences"
        )
    sentence_id = medec_sentence_id(boundaries, sentences[verdict.error_sentence].start)
    corrected = sourced_correction(verdict)
    if corrected is None:
        original = record.sentence_by_id(sentence_id)
        corrected = original.text if no_proposal == "original" and original is not None else None
    return SubmissionLine(record.text_id, 1, sentence_id, corrected)


def sourced_correction(verdict) -> str | None:
    """The leading asserted error's corrected sentence when its asserting source produced one, else None.
    Lexicon alternatives are never a correction."""
    finding = verdict.findings[0] if verdict.flag and verdict.findings else None
    if finding is None or not finding.correction_source or not (finding.corrected_sentence or "").strip():
        return None
    return finding.corrected_sentence


def verifier_counters(nlp) -> Callable[[], dict[str, int]] | None:
    """A function reading the counters of the medcorr component's verifier (``stats()``), or None when
    the pipeline has no medcorr component or no verifier."""
    verifier = verifier_of(nlp)
    if callable(getattr(verifier, "stats", None)):
        return lambda: dict(verifier.stats())
    return None


def iter_medec(
    nlp,
    records: Iterable[MedecRecord],
    *,
    batch_size: int | None = None,
    no_proposal: NoProposal = "original",
    stats: RunStats | None = None,
) -> Iterator[SubmissionLine]:
    """Lazily yield one submission line per record, in order (see :func:`run_medec`)."""
    if no_proposal not in ("original", "na"):
        raise ValueError("no_proposal must be 'original' or 'na'")
    if batch_size is None:
        batch_size = verifier_batch(nlp)
    stats = stats if stats is not None else RunStats()
    counters = verifier_counters(nlp)
    before = counters() if counters else {}
    pending: list[tuple[MedecRecord, list[tuple[int, int]]]] = []

    def docs() -> Iterator[Any]:
        for record in records:
            doc, boundaries = make_medec_doc(nlp, record)
            stats.collapsed_sentences += len(record.sentences) - len(boundaries) if len(doc) else 0
            pending.append((record, boundaries))
            yield doc

    started = time.perf_counter()
    try:
        for index, doc in enumerate(nlp.pipe(docs(), batch_size=batch_size)):
            record, boundaries = pending[index]
            pending[index] = None  # type: ignore[call-overload]  (free as we go)
            verdict = verdict_of(doc)
            line = submission_line(doc, record, boundaries, no_proposal, verdict)
            stats.notes += 1
            stats.statuses[verdict.status.value] = stats.statuses.get(verdict.status.value, 0) + 1
            if line.error_flag:
                stats.flagged += 1
                if sourced_correction(verdict) is None:
                    stats.flagged_without_proposal += 1
            yield line
    finally:
        stats.seconds += time.perf_counter() - started
        if counters:
            after, so_far = counters(), stats.verifier or {}
            stats.verifier = {key: so_far.get(key, 0) + value - before.get(key, 0) for key, value in after.items()}


def run_medec(
    nlp,
    records: Iterable[MedecRecord],
    *,
    batch_size: int | None = None,
    no_proposal: NoProposal = "original",
    progress: bool = False,
    stats: RunStats | None = None,
) -> list[SubmissionLine]:
    """Run ``nlp`` (a pipeline with the medcorr component) on MEDEC records; one line per record.

    ``stats``, when given, is filled with the counts and timing (and the LLM-call count when the
    component has a verifier). ``progress`` shows a tqdm bar (notes/s) on stderr. ``batch_size`` (notes per
    ``nlp.pipe`` batch) defaults to :data:`medcorr.pipeline.DEFAULT_PIPE_BATCH`, or to the notes the verifier
    can have in flight when that is more.
    """
    records = list(records)
    lines = iter_medec(nlp, records, batch_size=batch_size, no_proposal=no_proposal, stats=stats)
    if progress:
        from tqdm import tqdm

        lines = tqdm(lines, total=len(records), unit="note", file=sys.stderr, desc="medec run")
    return list(lines)
