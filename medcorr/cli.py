"""``medcorr`` command line: one entry point, one subcommand module per feature.

Each module in :data:`SUBCOMMAND_MODULES` exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed args, returning the exit code). Module-level imports there stay light so
that ``medcorr --help`` is fast; heavy imports happen inside the handlers.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Sequence

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "medcorr.cli_check",
    "medcorr.train.cli",
    "medcorr.medec.cli",
    "medcorr.benchmark.bench",
    "medcorr.stream.cli",
    "medcorr.cli_init",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: Exit status when the reader of standard output went away (``medcorr check NOTE | head -2``): 128 + SIGPIPE,
#: the status a shell reports for a command that a closed pipe stopped (e.g. ``yes | head -1``).
EXIT_BROKEN_PIPE = 128 + int(getattr(signal, "SIGPIPE", 13))


class UsageError(Exception):
    """Bad usage or unreadable input: reported as one line on stderr with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The full ``medcorr`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="medcorr",
        description=(
            "Clinical-note error detection for documentation review. Ranks each note's check-worthy "
            "diagnosis, management, treatment, drug and organism statements, and asserts an error (with a "
            "correction) only when a source with evidence says so: an evidence check, or a language-model "
            "verifier you configure."
        ),
        epilog="Run 'medcorr COMMAND --help' for the options of a command.",
    )
    from medcorr import __version__

    parser.add_argument("--version", action="version", version=f"medcorr {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = int(args.func(args) or EXIT_OK)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit-time flush
        return code
    except BrokenPipeError:
        return stdout_closed()
    except UsageError as error:
        print(f"medcorr: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def stdout_closed() -> int:
    """Handle a ``BrokenPipeError`` on standard output: the reader (``head``, ``less``, ``jq``) stopped reading.

    As the Python documentation recommends (library/signal, "Note on SIGPIPE"), standard output is pointed at
    ``os.devnull`` so that the interpreter's final flush of what is still buffered does not fail again, and
    the command ends quietly with :data:`EXIT_BROKEN_PIPE`. Returns that exit code.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured in tests)
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
