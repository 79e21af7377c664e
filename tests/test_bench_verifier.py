"""``medcorr bench --config CFG``: the verifier section, against a scripted server and the real llama.cpp one.

The scripted server answers like a model would, by the note's sentence count: some notes get a valid answer,
some a rejected one first (so medcorr re-asks), some only rejected ones (so they stay unverified). The report's
calls and tokens per note must be what the server saw, the plain client must have sent exactly the bodies
medcorr sent, and a cached re-run must send nothing.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chat_stub import StubServer, answer, checked_sentences, note_sentences
from medcorr.benchmark.bench import load_notes
from medcorr.benchmark.verifier import PLAIN_USER_AGENT, parse_settings

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from medcorr.cli import main; sys.exit(main(sys.argv[1:]))"]
LIMIT = 4
ROUNDS = 2
SWEEP = (1, 2)


def write_config(path: Path, base_url: str, model: str, examples: int = 0, max_tokens: int = 64,
                 response_format: str = "none", concurrency: int = 2) -> Path:
    """A pipeline .cfg with a ChatVerifier (its disk cache set, which the bench must turn off when timing)."""
    path.write_text(f"""[nlp]
lang = "en"
pipeline = ["medcorr"]

[components]

[components.medcorr]
factory = "medcorr"
verify_top_k = 2

[components.medcorr.verifier]
@medcorr_verifiers = "medcorr.ChatVerifier.v1"
base_url = "{base_url}"
model = "{model}"
api_key_env = null
timeout = 120
max_retries = 0
max_concurrency = {concurrency}
examples = {examples}
max_tokens = {max_tokens}
response_format = "{response_format}"
cache_dir = "{path.parent / 'user-cache'}"
""", encoding="utf-8")
    return path


def kind_of(body: dict[str, Any]) -> int:
    """0: always a valid answer; 1: a rejected answer first; 2: never a valid answer (by sentence count)."""
    return len(note_sentences(body)) % 3


def script(body: dict[str, Any], index: int) -> tuple[int, str]:
    reasked = any(message["role"] == "assistant" for message in body["messages"])
    kind = kind_of(body)
    if kind == 2 or (kind == 1 and not reasked):
        return 200, "I think the note is fine"
    return 200, answer(True, checked_sentences(body)[0], "A corrected sentence.", "scripted rationale")


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "bench", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    server = StubServer(script, delay=0.05)
    try:
        config = write_config(tmp_path_factory.mktemp("bench-verifier") / "verifier.cfg", server.base_url, "stub")
        result = run_bench("--config", str(config), "--verifier-only", "--json", "--repeat", str(ROUNDS),
                           "--limit", str(LIMIT), "--batch-size", "2",
                           "--verifier-concurrency", *map(str, SWEEP))
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout)
        yield report, server, result.stderr, config
    finally:
        server.close()


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


def split_by_client(server: StubServer) -> tuple[list[dict], list[dict]]:
    medcorr = [b for b, h in zip(server.bodies, server.headers) if h.get("user-agent") == "medcorr"]
    plain = [b for b, h in zip(server.bodies, server.headers) if h.get("user-agent") == PLAIN_USER_AGENT]
    assert len(medcorr) + len(plain) == server.calls
    return medcorr, plain


def words(text: str) -> int:
    return len(text.split())


def usage(body: dict[str, Any]) -> tuple[int, int]:
    """The token counts the stub reports for a body (its prompt and reply word counts)."""
    prompt = sum(words(str(m.get("content", ""))) for m in body["messages"])
    return prompt, words(script(body, 0)[1])


def test_the_plain_client_sends_exactly_the_bodies_medcorr_sends(scripted):
    report, server, _, _ = scripted
    section = report["verifier"]
    medcorr, plain = split_by_client(server)
    plain_passes = ROUNDS * len(SWEEP)
    per_pass = Counter(canonical(b) for b in plain)
    assert section["plain_client"]["first_pass_requests"] * plain_passes == len(plain)
    assert all(count == plain_passes for count in per_pass.values())  # every body once per plain pass
    one_pass = Counter({body: count // plain_passes for body, count in per_pass.items()})
    # medcorr: the first (cache-filling) pass and every timed pass send that same set; the warm-up passes
    # send the bodies of their notes
    timed = [p for p in section["passes"] if p["kind"] in ("cache fill", "timed")]
    warmup = [p for p in section["passes"] if p["kind"] == "warm-up"]
    rest = Counter(canonical(b) for b in medcorr)
    for _ in timed:
        rest -= one_pass
    assert sum(rest.values()) == sum(p["calls"] for p in warmup) == len(medcorr) - len(timed) * len(plain) // plain_passes
    assert set(rest) <= set(one_pass)
    # re-asks are part of the bodies: the scripted server rejects some first answers
    assert any(any(m["role"] == "assistant" for m in json.loads(b)["messages"]) for b in one_pass)


def test_calls_and_tokens_per_note_are_what_the_server_saw(scripted):
    report, server, _, _ = scripted
    section = report["verifier"]
    medcorr, plain = split_by_client(server)
    assert sum(p["calls"] for p in section["passes"]) == len(medcorr)
    assert sum(p["prompt_tokens"] for p in section["passes"]) == sum(usage(b)[0] for b in medcorr)
    assert sum(p["completion_tokens"] for p in section["passes"]) == sum(usage(b)[1] for b in medcorr)
    one_pass = plain[: section["plain_client"]["first_pass_requests"]]
    notes = section["notes"]
    assert notes == LIMIT
    expected_unverified = sum(1 for b in one_pass if kind_of(b) == 2
                              and any(m["role"] == "assistant" for m in b["messages"]))
    for row in section["rows"]:
        assert row["calls_per_note"] == pytest.approx(len(one_pass) / notes)
        assert row["prompt_tokens_per_note"] == pytest.approx(sum(usage(b)[0] for b in one_pass) / notes)
        assert row["completion_tokens_per_note"] == pytest.approx(sum(usage(b)[1] for b in one_pass) / notes)
        assert row["plain_prompt_tokens_per_note"] == pytest.approx(row["prompt_tokens_per_note"])
        assert row["cache_hits"] == 0  # timed passes run with the cache off, although the config sets one
        assert row["unverified_notes"] == [expected_unverified] * ROUNDS
        assert row["statuses"].get("unverified", 0) == expected_unverified
    assert 1 < section["rows"][0]["calls_per_note"] <= 2  # some notes re-asked, none more than once


def test_ratio_pairs_each_round_and_concurrency_reaches_the_server(scripted):
    report, server, _, _ = scripted
    section = report["verifier"]
    assert [row["concurrency"] for row in section["rows"]] == list(SWEEP)
    for row in section["rows"]:
        medcorr, plain = row["medcorr_notes_per_s_all"], row["plain_notes_per_s_all"]
        assert len(medcorr) == len(plain) == ROUNDS and all(rate > 0 for rate in medcorr + plain)
        assert row["ratios"] == pytest.approx([m / p for m, p in zip(medcorr, plain)])
        assert row["ratio"] == pytest.approx(statistics.median(row["ratios"]))
        assert row["medcorr_notes_per_s"] == pytest.approx(statistics.median(medcorr))
    timed = [p for p in section["passes"] if p["kind"] == "timed"]
    assert [(p["round"], p["concurrency"]) for p in timed] == [(r + 1, c) for r in range(ROUNDS) for c in SWEEP]
    # medcorr first in round 1, the plain client first in round 2, each at each concurrency in turn
    medcorr_bodies, plain_bodies = split_by_client(server)
    agents = [h.get("user-agent") for h in server.headers]
    warmups = sum(p["calls"] for p in section["passes"] if p["kind"] in ("cache fill", "warm-up"))
    per_pass = section["plain_client"]["first_pass_requests"]
    expected = (["medcorr"] * per_pass + [PLAIN_USER_AGENT] * per_pass) * len(SWEEP) \
        + ([PLAIN_USER_AGENT] * per_pass + ["medcorr"] * per_pass) * len(SWEEP)
    assert agents[warmups:] == expected
    assert server.max_in_flight >= 2
    targets = section["targets"]
    assert targets["verifier_vs_plain_client"]["value"] == pytest.approx(min(r["ratio"] for r in section["rows"]))
    serial = section["rows"][0]["plain_notes_per_s"]
    assert targets["verifier_vs_one_at_a_time"]["value"] == pytest.approx(
        section["rows"][1]["medcorr_notes_per_s"] / serial)


def test_a_cached_rerun_sends_nothing(scripted):
    report, _, _, config = scripted
    cached = report["verifier"]["cached_rerun"]
    assert cached["first_pass_calls"] > LIMIT and cached["calls"] == 0
    assert cached["cache_hits"] == cached["first_pass_calls"]
    assert report["verifier"]["targets"]["verifier_cached_rerun_calls"]["met"] is True
    assert not (config.parent / "user-cache").exists()  # the config's own cache directory is never used


def test_markdown_and_no_note_text(scripted):
    from medcorr.benchmark.bench import render_markdown

    report, _, stderr, _ = scripted
    text = render_markdown(report)
    assert "Verifier stage" in text and "| max_concurrency |" in text and "Cached re-run" in text
    assert "detector" not in report and "end_to_end" not in report  # --verifier-only
    notes, _ = load_notes(None, LIMIT)
    output = json.dumps(report) + stderr + text
    for note, spans in notes:
        for start, end in spans:
            if end - start > 30:
                assert note[start:end] not in output


def test_no_verifier_no_section_and_no_request(tmp_path):
    server = StubServer(script)
    try:
        plain = tmp_path / "plain.cfg"
        plain.write_text('[nlp]\nlang = "en"\npipeline = ["medcorr"]\n\n[components]\n\n'
                         '[components.medcorr]\nfactory = "medcorr"\n', encoding="utf-8")
        result = run_bench("--config", str(plain), "--verifier-only")
        assert result.returncode == 2 and "no verifier" in result.stderr
        result = run_bench("--verifier-only")
        assert result.returncode == 2 and "--config" in result.stderr
        result = run_bench("--set", "components.medcorr.verifier.max_concurrency=2")
        assert result.returncode == 2 and "--config" in result.stderr
        config = write_config(tmp_path / "v.cfg", server.base_url, "stub")
        result = run_bench("--config", str(config), "--verifier-concurrency", "0", "--verifier-only")
        assert result.returncode == 2 and "at least 1" in result.stderr
        assert server.calls == 0
    finally:
        server.close()


def test_settings_are_json_when_they_parse():
    assert parse_settings(["components.medcorr.verifier.examples=1", "components.medcorr.verifier.base_url="
                           "http://127.0.0.1:8080/v1", "components.medcorr.verifier.cache_dir=null"]) == {
        "components.medcorr.verifier.examples": 1,
        "components.medcorr.verifier.base_url": "http://127.0.0.1:8080/v1",
        "components.medcorr.verifier.cache_dir": None}
    with pytest.raises(ValueError):
        parse_settings(["examples"])


@pytest.mark.llm
def test_real_llama_server_through_the_bench(llm_server, tmp_path):
    config = write_config(tmp_path / "llama.cfg", "http://127.0.0.1:1/v1", "placeholder", examples=1, max_tokens=48)
    result = run_bench("--config", str(config), "--set", f"components.medcorr.verifier.base_url={llm_server.base_url}",
                       "--set", f"components.medcorr.verifier.model={llm_server.model}", "--verifier-only", "--json",
                       "--repeat", "1", "--limit", "2", "--verifier-concurrency", "2", timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    section = json.loads(result.stdout)["verifier"]
    assert section["status"] == "ok", section
    assert section["overrides"]["components.medcorr.verifier.model"] == llm_server.model
    [row] = section["rows"]
    assert row["concurrency"] == 2 and row["medcorr_notes_per_s"] > 0 and row["plain_notes_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["medcorr_notes_per_s"] / row["plain_notes_per_s"])
    assert row["plain_failed_requests"] == 0 and row["cache_hits"] == 0
    assert row["prompt_tokens_per_note"] > 0 and row["completion_tokens_per_note"] > 0
    # each note with claims costs one call, or two when its first answer was rejected
    assert 0 < row["calls_per_note"] <= 2 and 0 < row["plain_requests_per_note"] <= 2
    assert set(row["statuses"]) <= {"checked", "unverified", "no_claims"}
    assert section["cached_rerun"]["calls"] == 0
    assert section["cached_rerun"]["cache_hits"] == section["cached_rerun"]["first_pass_calls"] > 0
