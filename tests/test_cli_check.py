"""``medcorr check``: the JSON contract, the readable report, stdin, exit codes and bad input."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medcorr.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "medcorr" / "data" / "examples" / "note_pneumonia.txt"
FINDING_KEYS = {"start", "end", "text", "type", "score", "sentence", "correction", "corrected_sentence", "candidates"}


def run_cli(*args: str, stdin: bytes | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medcorr.cli", *args], input=stdin, capture_output=True,
                          timeout=timeout)


def test_json_contract(capsys):
    assert main(["check", str(EXAMPLE), "--json", "--threshold", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["flag"], bool) and out["flag"] is True
    assert isinstance(out["score"], float) and 0.0 <= out["score"] <= 1.0
    assert isinstance(out["error_sentence"], int) and out["error_sentence"] >= 0
    assert out["findings"]
    for finding in out["findings"]:
        assert FINDING_KEYS <= set(finding)
        text = EXAMPLE.read_text(encoding="utf-8")
        assert text[finding["start"]:finding["end"]] == finding["text"]
        assert finding["type"] in {"DIAGNOSIS", "MANAGEMENT", "TREATMENT", "PHARMACOTHERAPY", "CAUSAL_ORGANISM"}
        assert all(isinstance(c[0], str) and isinstance(c[1], float) for c in finding["candidates"])
        assert finding["correction"] is None or finding["correction"] == finding["candidates"][0][0]


def test_unflagged_note_has_no_findings(capsys):
    assert main(["check", str(EXAMPLE), "--json", "--threshold", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flag"] is False and out["error_sentence"] == -1 and out["findings"] == []


def test_readable_report_names_sentence_type_score_and_correction(capsys):
    assert main(["check", str(EXAMPLE), "--threshold", "0"]) == 0
    report = capsys.readouterr().out
    assert "ERROR SUSPECTED" in report
    for label in ("sentence:", "span:", "correction:", "score"):
        assert label in report


def test_stdin_dash():
    result = run_cli("check", "-", "--json", stdin=EXAMPLE.read_bytes())
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "findings" in json.loads(result.stdout)


@pytest.mark.parametrize("make_input, reason", [
    (lambda p: p / "missing.txt", "cannot read"),
    (lambda p: p, "is a directory"),
    (lambda p: _write(p / "latin1.txt", "Diagnose: Lungenentzündung".encode("latin-1")), "not valid UTF-8"),
    (lambda p: _write(p / "binary.bin", bytes(range(256)) * 4), "binary"),
])
def test_unreadable_input_exits_2_with_one_line(tmp_path, capsys, make_input, reason):
    assert main(["check", str(make_input(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert reason in err and len(err.splitlines()) == 1


def test_bad_usage_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check"])
    assert exit_info.value.code == 2
    assert main(["check", str(EXAMPLE), "--threshold", "3"]) == 2
    assert "--threshold" in capsys.readouterr().err


def test_too_large_note_is_refused(tmp_path, capsys):
    note = _write(tmp_path / "big.txt", b"Fever. " * 200)
    assert main(["check", str(note), "--max-bytes", "100"]) == 2
    assert "larger than 100 bytes" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"   \n\t  \n", "Der Patient hat Fieber. Diagnose: Grippe.".encode()])
def test_empty_whitespace_and_foreign_notes_give_a_normal_result(tmp_path, capsys, content):
    assert main(["check", str(_write(tmp_path / "note.txt", content)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["score"] <= 1.0


@pytest.mark.slow
def test_one_megabyte_note_finishes(tmp_path):
    sentence = b"The patient was seen on the ward and vital signs were stable today. "
    note = _write(tmp_path / "big.txt", sentence * (1024 * 1024 // len(sentence)))
    started = time.monotonic()
    result = run_cli("check", str(note), "--json", "--highlight", timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    out = json.loads(result.stdout)
    assert out["suspect_sentence"] >= 0
    print(f"1 MiB note checked in {time.monotonic() - started:.0f} s")


def test_every_command_has_help():
    from medcorr.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"check", "train", "export", "cv", "medec", "stream"} <= set(commands)
    for name, sub in commands.items():
        assert sub.description, name
        assert len(sub.format_help()) > 200, name


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
