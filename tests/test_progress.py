"""``medcorr check`` shows the model's progress on stderr for long notes, never on stdout."""
from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from medcorr.progress import WindowProgress, check_progress, wants_progress

EXAMPLES = Path(__file__).resolve().parents[1] / "medcorr" / "data" / "examples"


def long_note(chars: int) -> bytes:
    notes = "\n\n".join(path.read_text(encoding="utf-8") for path in sorted(EXAMPLES.glob("*.txt")))
    return ((notes + "\n\n") * (chars // len(notes) + 1))[:chars].encode("utf-8")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_when_not_a_terminal_are_spaced_and_end_with_the_last_count():
    out, clock = io.StringIO(), Clock()
    progress = WindowProgress(out, interactive=False, clock=clock)
    for done in range(1, 11):
        clock.now += 1.0
        progress.update(done, 10)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "medcorr check: model windows 1/10 (10%), 1.0 s"
    assert lines[-1] == "medcorr check: model windows 10/10 (100%), 10.0 s"
    assert len(lines) == 3  # 1, 6 (5 s later), 10 (the end)


def test_auto_delay_hides_short_checks_and_terminal_lines_are_rewritten():
    out, clock = io.StringIO(), Clock()
    progress = WindowProgress(out, interactive=True, delay_s=1.0, clock=clock)
    clock.now += 0.5
    progress.update(1, 4)
    progress.close()
    assert out.getvalue() == ""  # a check shorter than the delay shows nothing
    progress = WindowProgress(out, interactive=True, delay_s=1.0, clock=clock)
    clock.now += 1.5
    progress.update(2, 4)
    progress.close()
    assert out.getvalue().startswith("\rmedcorr check: model windows 2/4 (50%)") and out.getvalue().endswith("\n")


def test_auto_needs_a_terminal():
    assert not wants_progress("auto", io.StringIO())
    assert wants_progress("always", io.StringIO()) and not wants_progress("never", io.StringIO())


def test_check_progress_reports_every_window_of_a_real_pipeline():
    from medcorr.pipeline import build_pipeline

    nlp = build_pipeline()
    out = io.StringIO()
    with check_progress(nlp, "always", stream=out) as progress:
        nlp(long_note(20_000).decode("utf-8"))
    assert progress is not None
    last = out.getvalue().splitlines()[-1]
    done, total = last.split("windows ")[1].split(" ")[0].split("/")
    assert done == total and int(total) > 1
    assert nlp.get_pipe("medcorr").detector.progress is None  # restored


def run_check(*options: str, note: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medcorr", "check", "-", *options], input=note,
                          capture_output=True, timeout=600)


@pytest.mark.slow
def test_progress_goes_to_stderr_and_json_stays_clean():
    result = run_check("--json", "--progress", "always", note=long_note(30_000))
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    json.loads(result.stdout)  # stdout is exactly one JSON object
    assert len(result.stdout.decode().splitlines()) == 1
    assert b"medcorr check: model windows" in result.stderr and b"(100%)" in result.stderr
    quiet = run_check("--json", note=long_note(30_000))  # auto, stderr not a terminal
    assert b"model windows" not in quiet.stderr and json.loads(quiet.stdout)


def test_auto_shows_progress_on_a_terminal_once_the_delay_has_passed(monkeypatch):
    """``auto`` picks the terminal; the one-second delay is set to zero so a fast machine cannot finish first."""
    from medcorr import progress as progress_module
    from medcorr.pipeline import build_pipeline

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(progress_module, "AUTO_DELAY_S", 0.0)
    nlp = build_pipeline()
    terminal = Terminal()
    with check_progress(nlp, "auto", stream=terminal) as progress:
        nlp(long_note(20_000).decode("utf-8"))
    assert progress is not None and progress.interactive
    shown = terminal.getvalue()
    assert shown.startswith("\rmedcorr check: model windows") and "(100%)" in shown and shown.endswith("\n")
    with check_progress(nlp, "auto", stream=io.StringIO()) as progress:  # the same check, not a terminal
        nlp("Short note.")
    assert progress is None


@pytest.mark.slow
def test_the_cli_rewrites_one_line_when_stderr_is_a_terminal():
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "medcorr", "check", "-", "--json", "--progress", "always"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=terminal)
        stdout, _ = process.communicate(long_note(60_000), timeout=600)
        os.close(terminal)
        terminal = -1
        shown = b""
        while select.select([controller], [], [], 0.5)[0]:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert process.returncode == 0
    json.loads(stdout)
    assert b"\rmedcorr check: model windows" in shown and b"(100%)" in shown and b"\033[K" in shown


def test_every_check_option_with_a_value_states_its_default():
    from medcorr.cli import build_parser

    parser = build_parser()
    check = parser._subparsers._group_actions[0].choices["check"]
    for action in check._actions:
        if action.option_strings and action.nargs != 0 and action.dest != "help":
            assert "default" in (action.help or ""), action.option_strings
