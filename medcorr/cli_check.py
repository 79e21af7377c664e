"""``medcorr check``: run the pipeline on one note and print a report or JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medcorr.cli import UsageError

MAX_NOTE_BYTES_DEFAULT = 10 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``check`` command."""
    parser = subparsers.add_parser(
        "check",
        help="check one clinical note for errors",
        description=(
            "Check one clinical note (plain UTF-8 text) for a wrong diagnosis, management step, treatment, "
            "drug or causal organism. Prints each flagged span with its sentence, type, score and proposed "
            "correction; --json prints one machine-readable object instead."
        ),
        epilog="Exit codes: 0 success (flagged or not), 2 bad usage or unreadable input.",
    )
    parser.add_argument("note", help="path to a UTF-8 text file, or '-' to read standard input")
    parser.add_argument("--json", action="store_true", help="print one JSON object: flag, score, error_sentence, findings")
    parser.add_argument("--config", metavar="CFG", help="a spaCy .cfg or saved pipeline directory (default: built-in pipeline)")
    parser.add_argument("--model", metavar="DIR", help="a medcorr model directory (default: the shipped model)")
    parser.add_argument("--threshold", type=float, metavar="P", help="verdict threshold in [0, 1] (default: the model's)")
    parser.add_argument("--highlight", action="store_true",
                        help="always report the most suspicious span, even when the note is not flagged")
    parser.add_argument("--max-bytes", type=int, default=MAX_NOTE_BYTES_DEFAULT, metavar="N",
                        help=f"refuse notes larger than N bytes (default {MAX_NOTE_BYTES_DEFAULT})")
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
    if args.highlight:
        overrides["mode"] = "highlight"
    if args.model:
        overrides["model_path"] = args.model
    if args.config:
        overrides = {f"components.medcorr.{key}": value for key, value in overrides.items()}
    try:
        nlp = build_pipeline(args.config, overrides)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        raise UsageError(str(error).splitlines()[0]) from None
    doc = nlp(text)
    verdict = verdict_of(doc)
    if args.json:
        print(json.dumps(verdict.to_dict(), ensure_ascii=False))
    else:
        print(format_report(doc, verdict))
    return 0


def format_report(doc, verdict) -> str:
    """A readable report of a verdict."""
    sentences = list(doc.sents) if doc.has_annotation("SENT_START") else []
    lines = [
        f"verdict: {'ERROR SUSPECTED' if verdict.flag else 'no error found'} "
        f"(score {verdict.score:.3f}, threshold {doc_threshold(doc):.3f})",
    ]
    if verdict.suspect_sentence >= 0:
        lines.append(f"most suspicious sentence: #{verdict.suspect_sentence} "
                     f"(localisation {verdict.suspect_score:.2f})")
    for number, finding in enumerate(verdict.findings, 1):
        sentence = sentences[finding.sentence].text.strip() if finding.sentence < len(sentences) else ""
        lines += [
            "",
            f"[{number}] {finding.type.value}  score {finding.score:.3f}  sentence #{finding.sentence}",
            f"    sentence:   {sentence}",
            f"    span:       {finding.text!r} (chars {finding.start}-{finding.end})",
            f"    correction: {finding.correction if finding.correction is not None else '(no proposal)'}",
        ]
        if finding.corrected_sentence:
            lines.append(f"    corrected:  {finding.corrected_sentence}")
        if finding.candidates:
            ranked = ", ".join(f"{text} ({score:.2f})" for text, score in finding.candidates[:5])
            lines.append(f"    candidates: {ranked}")
    return "\n".join(lines)


def doc_threshold(doc) -> float:
    """The threshold of the medcorr pipe that processed ``doc`` (the component records it in the span
    group's attrs, since a Doc does not know its pipeline)."""
    for group in doc.spans.values():
        if "medcorr.threshold" in group.attrs:
            return float(group.attrs["medcorr.threshold"])
    return float("nan")
