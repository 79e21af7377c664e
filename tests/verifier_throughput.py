"""The verifier against a real server: medcorr's nlp.pipe vs a plain concurrent client, same prompts.

Starts the llama.cpp server of the ``llm`` tests (SmolLM2-135M-Instruct, llama-cpp-python; see
tests/llm_server.py) unless ``--base-url`` names a running one, builds the verifier requests of ``--notes``
MEDEC notes (or the fixture notes), and for each concurrency times

- medcorr: ``nlp.pipe`` over the notes with ``medcorr.ChatVerifier.v1`` (detector, claims, verifier: the
  whole pipeline), no cache;
- plain: a ThreadPoolExecutor of ``urllib`` POSTs of exactly the same request bodies (no pipeline),

interleaved, ``--rounds`` times, and reports notes/s, calls and tokens per note, and a cached re-run's
calls. The 135M model's answers measure mechanics, not medicine: its MEDEC figures are printed for what
they are. Usage::

    python tests/verifier_throughput.py --medec ../shared/medec/MEDEC-MS-...csv --notes 24 --json out.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "notes"


def load_notes(medec: str | None, count: int) -> list[str]:
    if medec:
        from medcorr.medec.io import read_medec

        return [record.text for record in read_medec(medec)[:count]]
    texts = sorted(path.read_text(encoding="utf-8") for path in FIXTURES.glob("*.txt"))
    return (texts * (count // len(texts) + 1))[:count]


def build(base_url: str, model: str, concurrency: int, examples: int, max_tokens: int, cache_dir: str | None = None):
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config={"checks": None, "verifier": {
        "@medcorr_verifiers": "medcorr.ChatVerifier.v1", "base_url": base_url, "model": model, "api_key_env": None,
        "max_concurrency": concurrency, "examples": examples, "max_tokens": max_tokens, "cache_dir": cache_dir,
        "timeout": 300, "response_format": "json_object_schema"}})
    return nlp


def request_bodies(nlp, notes: Sequence[str]) -> list[bytes]:
    """The exact bodies medcorr sends for ``notes`` (one sample each)."""
    from medcorr.verifiers.base import VerificationRequest

    component = nlp.get_pipe("medcorr")
    verifier = component.verifier
    bodies = []
    for doc, (spans, verdict) in zip(map(nlp.make_doc, notes), component.predict(list(map(nlp.make_doc, notes)))):
        if not verdict.claims:
            continue
        request = VerificationRequest(doc.text, tuple(spans), tuple(verdict.claims[: component.cfg["verify_top_k"]]))
        body = {"model": verifier.model, "stream": False, "messages": verifier.messages_for(request),
                **verifier.settings(request)}
        bodies.append(json.dumps(body, ensure_ascii=False).encode("utf-8"))
    return bodies


def plain_client(url: str, bodies: Sequence[bytes], concurrency: int) -> float:
    """Seconds to send every body with ``concurrency`` threads and read the replies."""
    def post(body: bytes) -> None:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, bodies))
    return time.perf_counter() - started


def medcorr_run(nlp, notes: Sequence[str]) -> tuple[float, list[Any], dict[str, int]]:
    verifier = nlp.get_pipe("medcorr").verifier
    before = verifier.stats()
    started = time.perf_counter()
    verdicts = [doc._.medcorr for doc in nlp.pipe(notes, batch_size=32)]
    seconds = time.perf_counter() - started
    after = verifier.stats()
    return seconds, verdicts, {key: after[key] - before.get(key, 0) for key in after}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--medec", help="a MEDEC CSV (default: the fixture notes)")
    parser.add_argument("--notes", type=int, default=24)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--examples", type=int, default=1, help="retrieved examples per prompt")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--base-url", help="a running OpenAI-compatible server (default: start llama.cpp)")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--json", help="write the report here too")
    args = parser.parse_args(argv)

    process = None
    base_url = args.base_url
    if base_url is None:
        from llm_server import find_gguf, start_llama_server, stop

        gguf = find_gguf()
        if gguf is None:
            raise SystemExit("no SmolLM2 GGUF installed: run bash .ci/llm.sh")
        process, server = start_llama_server(gguf, Path(tempfile.mkdtemp()) / "server.log")
        base_url = server.base_url
    try:
        notes = load_notes(args.medec, args.notes)
        report: dict[str, Any] = {"notes": len(notes), "examples": args.examples, "max_tokens": args.max_tokens,
                                  "server": "llama-cpp-python, SmolLM2-135M-Instruct Q4_1" if process else base_url,
                                  "rows": []}
        probe = build(base_url, args.model, 1, args.examples, args.max_tokens)
        bodies = request_bodies(probe, notes)
        plain_client(f"{base_url}/chat/completions", bodies[:2], 1)  # warm the server
        for concurrency in args.concurrency:
            nlp = build(base_url, args.model, concurrency, args.examples, args.max_tokens)
            medcorr_rates, plain_rates, counts = [], [], {}
            for _ in range(args.rounds):
                plain_rates.append(len(notes) / plain_client(f"{base_url}/chat/completions", bodies, concurrency))
                seconds, verdicts, counts = medcorr_run(nlp, notes)
                medcorr_rates.append(len(notes) / seconds)
            row = {"concurrency": concurrency, "medcorr_notes_per_s": medcorr_rates, "plain_notes_per_s": plain_rates,
                   "ratio_of_medians": statistics.median(medcorr_rates) / statistics.median(plain_rates),
                   "per_note": {key: value / len(notes) for key, value in counts.items()},
                   "statuses": _count(v.status.value for v in verdicts),
                   "flags": _count(str(v.flag) for v in verdicts)}
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
        with tempfile.TemporaryDirectory() as cache:
            cached = build(base_url, args.model, max(args.concurrency), args.examples, args.max_tokens, cache)
            medcorr_run(cached, notes)
            _, _, again = medcorr_run(cached, notes)
            report["cached_rerun"] = again
        print(json.dumps({"cached_rerun": report["cached_rerun"]}))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")
    finally:
        if process is not None:
            stop(process)
    return 0


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


if __name__ == "__main__":
    raise SystemExit(main())
