"""``medcorr`` command line: one entry point, one subcommand module per feature.

Each module in :data:`SUBCOMMAND_MODULES` exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed args, returning the exit code). Module-level imports there stay light so
that ``medcorr --help`` is fast; heavy imports happen inside the handlers.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

SUBCOMMAND_MODULES: tuple[str, ...] = (
    "medcorr.cli_check",
    "medcorr.train.cli",
    "medcorr.medec.cli",
    "medcorr.bench",
    "medcorr.stream.cli",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad usage or unreadable input: reported as one line on stderr with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The full ``medcorr`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="medcorr",
        description=(
            "Clinical-note error detection and correction. Finds suspicious diagnosis, management, "
            "treatment, pharmacotherapy and causal-organism statements and proposes corrections."
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
        return int(args.func(args) or EXIT_OK)
    except UsageError as error:
        print(f"medcorr: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
