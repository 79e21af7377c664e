"""A reader that stops reading (``medcorr check NOTE | head -2``) ends the command quietly, no traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from medcorr.cli import EXIT_BROKEN_PIPE

EXAMPLE = Path(__file__).resolve().parents[1] / "medcorr" / "data" / "examples" / "note_pneumonia.txt"


def run_into_closed_pipe(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    """Run ``python ARGS`` with standard output a pipe whose read end is already closed (the reader left)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, *args], stdout=write_end, stderr=subprocess.PIPE, input=stdin,
                                timeout=300)
    finally:
        os.close(write_end)
    return result.returncode, result.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("command", [
    ["-m", "medcorr", "stream", "--print-config", "--bootstrap-servers", "localhost:9"],
    ["-m", "medcorr.stream", "--print-config", "--bootstrap-servers", "localhost:9"],
])
def test_stream_print_config_into_closed_pipe(command):
    code, stderr = run_into_closed_pipe(*command)
    assert stderr == "", stderr[-2000:]
    assert code == EXIT_BROKEN_PIPE == 141


@pytest.mark.parametrize("options", [[], ["--json"]])
def test_check_into_closed_pipe(options):
    code, stderr = run_into_closed_pipe("-m", "medcorr", "check", "-", *options, stdin=EXAMPLE.read_bytes())
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr[-2000:]
    assert code == EXIT_BROKEN_PIPE


def test_check_into_head_prints_the_first_lines():
    """The ordinary shell pipeline: ``head`` gets its lines, medcorr's stderr stays clean."""
    result = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$0" -m medcorr check - | head -1', sys.executable],
        input=EXAMPLE.read_bytes(), capture_output=True, timeout=300)
    assert len(result.stdout.decode().splitlines()) == 1 and result.stdout.strip()
    assert "Traceback" not in result.stderr.decode(), result.stderr.decode()[-2000:]
    assert result.returncode in (0, EXIT_BROKEN_PIPE)
