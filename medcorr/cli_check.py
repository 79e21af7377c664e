"""``medcorr check``: run the pipeline on one note and print a report or JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medcorr.cli import UsageError
from medcorr.finding import SpanBasis
from medcorr.progress import PROGRESS_MODES, check_progress

MAX_NOTE_BYTES_DEFAULT = 10 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` command."""
    parser = subparsers.add_parser(
        "check",
        help="check one clinical note: its claims to double-check, and errors asserted with evidence",
        description=(
            "Check one clinical note (plain UTF-8 text). Prints the note's status, its ranked claims to "
            "double-check (the diagnosis, management step, treatment, drug or organism statements most likely "
            "to hold an error; not asserted errors), and any error asserted by a source with evidence (a "
            "verifier, an evidence check, or a detector with measured discrimination), with that source and, "
            "where the source produced one, its correction. --json prints one machine-readable object instead."
        ),
        epilog="Exit codes: 0 success (flagged or not), 2 bad usage or unreadable input.",
    )
    parser.add_argument("note", help="path to a UTF-8 text file, or '-' to read standard input")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: status, flag (true/false/null), source, claims, findings")
    parser.add_argument("--config", metavar="CFG", help="a spaCy .cfg or saved pipeline directory (default: built-in pipeline)")
    parser.add_argument("--model", metavar="DIR", help="a medcorr model directory (default: the shipped model)")
    parser.add_argument("--threshold", type=float, metavar="P",
                        help="force the detector's verdict head to judge the note at threshold P in [0, 1] (default: "
                             "unset, and the head judges only when its model records a cross-validated verdict AUC "
                             "of at least 0.75; forcing it on warns with the model's AUC)")
    parser.add_argument("--max-bytes", type=int, default=MAX_NOTE_BYTES_DEFAULT, metavar="N",
                        help=f"refuse notes larger than N bytes (default {MAX_NOTE_BYTES_DEFAULT})")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                        help="show the model's progress on stderr: auto (default: when stderr is a terminal and the "
                             "check takes over a second), always, never; stdout is never touched")
    parser.set_defaults(func=run_check)


def read_note(source: str, max_bytes: int) -> str:
    """The note text from a path or ``-``; :class:`UsageError` for unreadable, binary or non-UTF-8 input."""
    try:
        data = sys.stdin.buffer.read(max_bytes + 1) if source == "-" else _read_file(Path(source), max_bytes)
    except OSError as error:
        raise UsageError(f"cannot read {source}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise UsageError(f"note is larger than {max_bytes} bytes (raise --max-bytes to allow it)")
    if b"\x00" in data:
        raise UsageError(f"{source} looks binary (contains NUL bytes); expected a plain-text note")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UsageError(f"{source} is not valid UTF-8 (byte {error.start}); convert it to UTF-8 first") from None


def _read_file(path: Path, max_bytes: int) -> bytes:
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not a note file")
    with path.open("rb") as handle:
        return handle.read(max_bytes + 1)


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``medcorr check``."""
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError(f"--threshold must be in [0, 1], got {args.threshold}")
    text = read_note(args.note, args.max_bytes)
    from medcorr.pipeline import build_pipeline, verdict_of

    overrides = {}
    if args.threshold is not None:
        overrides["threshold"] = args.threshold
    if args.model:
        overrides["model_path"] = args.model
    if args.config:
        overrides = {f"components.medcorr.{key}": value for key, value in overrides.items()}
    try:
        nlp = build_pipeline(args.config, overrides)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise UsageError(str(error).splitlines()[0]) from None
    with check_progress(nlp, args.progress):
        doc = nlp(text)
    verdict = verdict_of(doc)
    if args.json:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        print(format_report(doc, verdict))
    return 0


def format_report(doc, verdict) -> str:
    """A readable report of a verdict: status, verdict and its source, claims, asserted errors."""
    sentences = list(doc.sents) if doc.has_annotation("SENT_START") else []
    lines = [f"status:  {verdict.status.value} ({verdict.status_reason})", f"verdict: {_verdict_line(verdict)}"]
    if verdict.source is not None and verdict.source.measured:
        lines.append(f"         source's measured discrimination: {verdict.source.measured}")
    if verdict.claims:
        lines += ["", "claims to double-check (not asserted errors), best first:"]
    for claim in verdict.claims:
        named = "(no term named: the whole sentence)" if claim.basis is SpanBasis.SENTENCE else repr(claim.text)
        lines += [
            f"  [{claim.rank + 1}] {claim.type.value} {named} in sentence #{claim.sentence} "
            f"(localisation {claim.score:.2f})",
            f"      sentence: {_sentence_text(sentences, claim.sentence)}",
        ]
        if claim.alternatives:
            lines.append(f"      lexicon alternatives (unranked, for review only): {', '.join(claim.alternatives[:8])}")
    if verdict.findings:
        lines += ["", "asserted errors:"]
    for number, finding in enumerate(verdict.findings, 1):
        names = ", ".join(item.name for item in finding.evidence)
        lines += [
            f"  [{number}] {finding.type.value} {finding.text!r} in sentence #{finding.sentence} (asserted by {names})",
            f"      sentence:   {_sentence_text(sentences, finding.sentence)}",
        ]
        lines += [f"      reason:     {item.reason}" for item in finding.evidence if item.reason]
        if finding.corrected_sentence or finding.correction:
            lines.append(f"      correction: {finding.corrected_sentence or finding.correction} "
                         f"(from {finding.correction_source})")
        else:
            lines.append("      correction: none proposed (the asserting source gave none)")
    return "\n".join(lines)


def _verdict_line(verdict) -> str:
    if verdict.flag is None:
        return "not judged (medcorr cannot tell whether this note holds an error)"
    confidence = "" if verdict.score is None else f", confidence {verdict.score:.2f}"
    if verdict.flag:
        return f"ERROR ASSERTED by {verdict.source.name}{confidence}"
    return f"no error found by {verdict.source.name}{confidence}"


def _sentence_text(sentences, index: int) -> str:
    return sentences[index].text.strip() if 0 <= index < len(sentences) else ""
