"""``medcorr init-config``: write the shipped example files (pipeline configs, connector settings, topic
script, systemd unit, Kubernetes manifest, FHIR CodeSystem, sample messages) into a folder to edit.

The files are package data (``medcorr/data/pipelines/``, ``medcorr/data/connectors/``), so they are there
after ``pip install medcorr`` as well as in a clone; written under ``DIR`` they keep the paths the docs use
(``pipelines/medspacy_medcorr.cfg``, ``connectors/stream.toml``, ``connectors/create-topics.sh`` ...).
"""
from __future__ import annotations

import argparse
import stat
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Iterator

from medcorr.cli import UsageError

#: Shipped folders (under ``medcorr/data``) and the folder each is written to under ``--out``.
SHIPPED: tuple[str, ...] = ("pipelines", "connectors")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``init-config`` command."""
    parser = subparsers.add_parser(
        "init-config",
        help="write the example pipeline configs and connector files into a folder",
        description=(
            "Write the files the docs refer to into DIR: pipelines/*.cfg (ready spaCy pipeline configs for "
            "'medcorr check --config' and 'medcorr stream --pipeline-config') and connectors/ (stream.toml, "
            "create-topics.sh, the systemd unit, the Kubernetes manifest, the FHIR CodeSystem and sample "
            "messages). Existing files are left alone unless --force is given."
        ),
        epilog="Example: medcorr init-config --out . && medcorr check NOTE.txt --config pipelines/medspacy_medcorr.cfg",
    )
    parser.add_argument("--out", metavar="DIR", default=".", help="folder to write into (default: the current folder)")
    parser.add_argument("--only", choices=SHIPPED, help="write only pipelines/ or only connectors/")
    parser.add_argument("--force", action="store_true", help="overwrite files that already exist")
    parser.set_defaults(func=run_init_config)


def shipped_files(folders: tuple[str, ...] = SHIPPED) -> Iterator[tuple[str, Traversable]]:
    """``(relative path, resource)`` of every shipped example file, e.g. ``("connectors/stream.toml", ...)``."""
    data = resources.files("medcorr") / "data"

    def walk(node: Traversable, prefix: str) -> Iterator[tuple[str, Traversable]]:
        for child in sorted(node.iterdir(), key=lambda item: item.name):
            if child.name.startswith((".", "__")):
                continue
            relative = f"{prefix}/{child.name}"
            if child.is_dir():
                yield from walk(child, relative)
            else:
                yield relative, child

    for folder in folders:
        yield from walk(data / folder, folder)


def write_examples(out: Path, folders: tuple[str, ...] = SHIPPED, force: bool = False) -> list[Path]:
    """Write the shipped example files under ``out``; returns the written paths.

    Raises :class:`~medcorr.cli.UsageError` (before writing anything) when a file exists and ``force`` is
    False, or when ``out`` is not a folder.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a folder")
    files = list(shipped_files(folders))
    if not force:
        existing = [relative for relative, _ in files if (out / relative).exists()]
        if existing:
            raise UsageError(f"{out / existing[0]} already exists ({len(existing)} of {len(files)} files do); "
                             "use --force to overwrite")
    written = []
    for relative, resource in files:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(resource.read_bytes())
        if target.suffix == ".sh":
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(target)
    return written


def run_init_config(args: argparse.Namespace) -> int:
    """Handler of ``medcorr init-config``."""
    folders = (args.only,) if args.only else SHIPPED
    try:
        written = write_examples(Path(args.out), folders, force=args.force)
    except OSError as error:
        raise UsageError(f"cannot write into {args.out}: {error.strerror or error}") from None
    for path in written:
        print(path)
    print(f"medcorr init-config: wrote {len(written)} files under {args.out}", file=sys.stderr)
    return 0
