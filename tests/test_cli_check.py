"""``medcorr check``: the JSON contract, the readable report, stdin, exit codes and bad input."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medcorr.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "medcorr" / "data" / "examples" / "note_pneumonia.txt"
FINDING_KEYS = {"role", "rank", "start", "end", "text", "type", "score", "sentence", "correction",
                "corrected_sentence", "correction_source", "alternatives", "evidence"}
TYPES = {"DIAGNOSIS", "MANAGEMENT", "TREATMENT", "PHARMACOTHERAPY", "CAUSAL_ORGANISM"}


def run_cli(*args: str, stdin: bytes | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medcorr.cli", *args], input=stdin, capture_output=True,
                          timeout=timeout)


def test_json_contract_of_the_default(capsys):
    assert main(["check", str(EXAMPLE), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    text = EXAMPLE.read_text(encoding="utf-8")
    assert out["status"] == "claims_only" and out["status_reason"]
    assert out["flag"] is None and out["score"] is None and out["source"] is None and out["error_sentence"] == -1
    assert out["findings"] == [] and len(out["claims"]) == 3
    for rank, claim in enumerate(out["claims"]):
        assert FINDING_KEYS <= set(claim) and claim["role"] == "claim" and claim["rank"] == rank
        assert text[claim["start"]:claim["end"]] == claim["text"] and claim["type"] in TYPES
        assert claim["correction"] is None and claim["evidence"] == []
        assert all(isinstance(a, str) for a in claim["alternatives"])


def test_json_contract_of_a_forced_detector_verdict(capsys):
    assert main(["check", str(EXAMPLE), "--json", "--threshold", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "checked" and out["flag"] is True and 0.0 <= out["score"] <= 1.0
    assert out["source"]["kind"] == "detector" and "AUC" in out["source"]["measured"]
    [finding] = out["findings"]
    assert FINDING_KEYS <= set(finding) and finding["role"] == "error" and finding["evidence"] == [out["source"]]
    assert finding["sentence"] == out["error_sentence"] == out["claims"][0]["sentence"]
    assert finding["correction"] is None and finding["correction_source"] is None


def test_forced_verdict_below_one_clears_the_note(capsys):
    assert main(["check", str(EXAMPLE), "--json", "--threshold", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flag"] is False and out["error_sentence"] == -1 and out["findings"] == [] and out["claims"]


def test_readable_report_separates_claims_from_asserted_errors(capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    report = capsys.readouterr().out
    assert "not judged" in report and "claims to double-check (not asserted errors)" in report
    assert "ERROR ASSERTED" not in report and "asserted errors:" not in report
    assert main(["check", str(EXAMPLE), "--threshold", "0"]) == 0
    forced = capsys.readouterr().out
    assert "ERROR ASSERTED by medcorr.OnnxDetector.v1" in forced and "asserted errors:" in forced
    assert "correction: none proposed" in forced


def test_statuses_are_printed(tmp_path, capsys):
    note = _write(tmp_path / "de.txt", "Der Patient ist ein 45-jähriger Mann mit Brustschmerzen seit zwei Stunden. "
                                      "Diagnose: akuter Hinterwandinfarkt.".encode())
    assert main(["check", str(note)]) == 0
    assert "status:  not_english" in capsys.readouterr().out
    assert main(["check", str(_write(tmp_path / "blank.txt", b"  \n"))]) == 0
    assert "status:  empty" in capsys.readouterr().out


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
    assert out["status"] in ("claims_only", "no_claims", "empty", "not_english") and out["flag"] is None


@pytest.mark.slow
def test_one_megabyte_note_finishes(tmp_path):
    sentence = b"The patient was seen on the ward and vital signs were stable today. "
    note = _write(tmp_path / "big.txt", sentence * (1024 * 1024 // len(sentence)))
    started = time.monotonic()
    result = run_cli("check", str(note), "--json", timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    out = json.loads(result.stdout)
    assert out["status"] == "too_long" and out["claims"] == []  # over the default budget of 200,000 characters
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


def test_the_report_says_when_a_claim_names_no_term():
    import spacy

    from medcorr.cli_check import format_report
    from medcorr.finding import ErrorType, Finding, SpanBasis, Status, Verdict

    text = "Seen in clinic. Plan was discussed with the family."
    doc = spacy.blank("en")(text)
    claims = [Finding(16, len(text), text[16:], ErrorType.MANAGEMENT, 0.7, 1, basis=SpanBasis.SENTENCE, rank=0),
              Finding(0, 4, "Seen", ErrorType.MANAGEMENT, 0.3, 0, basis=SpanBasis.TOKENS, rank=1)]
    report = format_report(doc, Verdict(Status.CLAIMS_ONLY, claims=claims, status_reason="not judged"))
    assert "[1] MANAGEMENT (no term named: the whole sentence) in sentence #1" in report
    assert "[2] MANAGEMENT 'Seen' in sentence #0" in report
