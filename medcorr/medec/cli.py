"""``medcorr medec run`` and ``medcorr medec score``: the MEDEC benchmark from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medcorr.cli import UsageError
from medcorr.pipeline import DEFAULT_PIPE_BATCH

RUN_EPILOG = """\
Input: a MEDEC CSV (columns 'Text ID', 'Text', 'Sentences'; the label columns may be absent).
Sentence ids in the output are MEDEC's: the Doc's sentence boundaries are set from the 'Sentences'
column before the pipeline runs.

Output: one line per text, the official MEDIQA-CORR format
  text_id error_flag error_sentence_id corrected_sentence
with '0 -1 NA' for a text without an error and the corrected sentence in double quotes. A flagged text
for which the pipeline proposes no correction gets its original sentence, unchanged (the official format
keeps NA for texts without an error); --no-proposal na writes NA instead. A summary (notes/s, flagged
texts, flagged texts without a proposal, LLM calls per 100 notes when the generator counts them) goes to
stderr.
"""

SCORE_EPILOG = """\
Scores exactly as the MEDIQA-CORR 2024 evaluation script defines it (its known bugs fixed):
error-flag and error-sentence accuracy over all gold texts (a missing prediction is wrong, a correct -1
is a hit); correction metrics per text: both NA -> credit, one NA -> 0 (a flag-0 line counts as NA),
otherwise ROUGE-1/2/L F ('rouge' package), BERTScore F1 (microsoft/deberta-xlarge-mnli, layer 40,
rescaled) and BLEURT-20, each clipped to [0, 1]. BERTScore and BLEURT are computed only from local copies
(--bertscore-model DIR with pip install 'medcorr[scoring]'; --bleurt-checkpoint DIR with the bleurt
package); otherwise the report says 'not computed' and why. Another local encoder given to
--bertscore-model gives a BERTScore marked 'not official' (its last layer, not rescaled). A requested
metric that cannot be computed (package or files missing) stops with exit code 2 before any scoring.
Aggregate = mean of ROUGE-1 F, BERTScore F1 and BLEURT-20 per pair; without all three (official) it is
marked PARTIAL and lists what it lacks; composite = (sum over scored pairs + both-NA texts) / gold texts.
Also prints recall per error type and the gold file's majority-class baselines.
"""


def register(subparsers) -> None:
    """Add ``medec`` with its ``run`` and ``score`` subcommands."""
    medec = subparsers.add_parser(
        "medec",
        help="run the pipeline on MEDEC files and score runs like MEDIQA-CORR 2024",
        description="The MEDEC benchmark: 'run' writes a MEDIQA-CORR submission, 'score' evaluates one.",
    )
    medec.set_defaults(func=lambda args: _missing_subcommand(medec))
    commands = medec.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the pipeline on a MEDEC CSV and write a submission file",
        description="Run the medcorr pipeline on every text of a MEDEC CSV and write a MEDIQA-CORR submission.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--input", required=True, metavar="CSV", help="MEDEC CSV file")
    run.add_argument("--output", metavar="SUB.txt", help="submission file to write (default: stdout)")
    run.add_argument("--limit", type=int, metavar="N", help="only the first N texts")
    run.add_argument(
        "--config", metavar="CFG", help="pipeline .cfg or saved pipeline directory (default: built-in pipeline)"
    )
    run.add_argument("--batch-size", type=int, metavar="N",
                     help=f"notes per nlp.pipe batch (default: {DEFAULT_PIPE_BATCH}, or as many notes as the verifier "
                          "can have in flight when that is more: max_concurrency / samples)")
    run.add_argument(
        "--no-proposal",
        choices=("original", "na"),
        default="original",
        help="what to write for a flagged text without a proposed correction (default: original sentence)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    run.set_defaults(func=cmd_run)

    score = commands.add_parser(
        "score",
        help="score a submission against a labeled MEDEC CSV",
        description="Score a MEDIQA-CORR submission file against a MEDEC gold CSV.",
        epilog=SCORE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("--gold", required=True, metavar="CSV", help="labeled MEDEC CSV")
    score.add_argument("--pred", required=True, metavar="SUB.txt", help="submission file ('-' for stdin)")
    score.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    score.add_argument("--report", metavar="REPORT.md", help="also write a Markdown report (README tables)")
    score.add_argument(
        "--bertscore-model",
        metavar="PATH",
        help="local copy of microsoft/deberta-xlarge-mnli: enables BERTScore (needs pip install 'medcorr[scoring]'); "
        "another local encoder gives a BERTScore marked not official",
    )
    score.add_argument(
        "--bleurt-checkpoint",
        metavar="PATH",
        help="local BLEURT-20 checkpoint: enables BLEURT (needs the bleurt package, TensorFlow)",
    )
    score.set_defaults(func=cmd_score)


def _missing_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _read_records(path: str, require: tuple[str, ...]):
    from medcorr.medec.io import MedecFormatError, read_medec

    if not Path(path).is_file():
        raise UsageError(f"file not found: {path}")
    try:
        return read_medec(path, require=require)
    except MedecFormatError as error:
        raise UsageError(str(error)) from None


def cmd_run(args: argparse.Namespace) -> int:
    """``medcorr medec run``."""
    from medcorr.medec.io import TEXT, SENTENCES, MedecFormatError, write_submission
    from medcorr.medec.run import RunStats, run_medec

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    records = _read_records(args.input, (TEXT, SENTENCES))
    if args.limit is not None:
        records = records[: args.limit]
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise UsageError(f"output directory does not exist: {Path(args.output).parent}")

    from medcorr import pipeline

    from catalogue import RegistryError
    from thinc.api import ConfigValidationError

    try:
        nlp = pipeline.build_pipeline(args.config)
    except FileNotFoundError as error:
        raise UsageError(str(error)) from None
    except (RegistryError, ConfigValidationError) as error:
        first_line = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise UsageError(f"cannot build the pipeline: {first_line}") from None

    stats = RunStats()
    try:
        lines = run_medec(
            nlp,
            records,
            batch_size=args.batch_size,
            no_proposal=args.no_proposal,
            progress=not args.no_progress,
            stats=stats,
        )
    except MedecFormatError as error:
        raise UsageError(f"{args.input}: {error}") from None

    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="\n") as handle:
            write_submission(lines, handle)
    else:
        write_submission(lines, sys.stdout)
        sys.stdout.flush()

    summary = (
        f"medec run: {stats.notes} notes in {stats.seconds:.1f}s ({stats.notes_per_second:.2f} notes/s); "
        f"statuses {', '.join(f'{k} {v}' for k, v in sorted(stats.statuses.items()))}; "
        f"flagged {stats.flagged}, of which {stats.flagged_without_proposal} without a sourced correction"
    )
    if stats.collapsed_sentences:
        summary += f"; {stats.collapsed_sentences} MEDEC sentence(s) merged into the previous one"
    per_note = stats.verifier_per_note()
    if stats.verifier is not None and per_note is not None:
        summary += (f"; verifier: {stats.verifier.get('calls', 0)} calls ({per_note.get('calls', 0):.2f} per note), "
                    f"{per_note.get('prompt_tokens', 0):.0f} prompt + {per_note.get('completion_tokens', 0):.0f} "
                    f"completion tokens per note, {stats.verifier.get('cache_hits', 0)} cache hits, "
                    f"{stats.verifier.get('failures', 0)} notes unverified")
    print(summary, file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """``medcorr medec score``."""
    from medcorr.medec.io import LABEL_COLUMNS, read_submission
    from medcorr.medec.score import MetricUnavailable, format_markdown, format_text, score_submission

    gold = _read_records(args.gold, LABEL_COLUMNS)
    if args.pred == "-":
        submission = read_submission(sys.stdin)
    else:
        if not Path(args.pred).is_file():
            raise UsageError(f"file not found: {args.pred}")
        from medcorr.medec.io import MedecFormatError

        try:
            submission = read_submission(args.pred)
        except MedecFormatError as error:
            raise UsageError(str(error)) from None
    try:
        result = score_submission(
            gold,
            submission,
            bertscore_model=args.bertscore_model,
            bleurt_checkpoint=args.bleurt_checkpoint,
        )
    except MetricUnavailable as error:
        raise UsageError(str(error)) from None
    except ValueError as error:
        raise UsageError(f"{args.gold}: {error}") from None

    if args.report:
        try:
            Path(args.report).write_text(format_markdown(result), encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {args.report}: {error.strerror or error}") from None
    if args.json:
        print(json.dumps(result.to_dict(), indent=None, sort_keys=False))
    else:
        sys.stdout.write(format_text(result))
    return 0
