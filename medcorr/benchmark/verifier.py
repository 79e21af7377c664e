"""The verifier section of ``medcorr bench``: a pipeline with a language-model verifier, end to end.

Runs only when ``medcorr bench --config CFG`` names a pipeline whose medcorr component has a verifier; without
one nothing here is loaded and no request is sent. For each ``max_concurrency`` of the sweep it times

* **medcorr**: ``nlp.pipe`` over the notes with the configured pipeline (sentences, detector, claims,
  verifier), the verifier's ``max_concurrency`` set to that value and its disk cache off;
* **the plain client**: a ``ThreadPoolExecutor`` of that many threads POSTing exactly the request bodies
  medcorr sent in its latest pass at that concurrency, in the order it sent them (recorded from the verifier's
  :class:`~medcorr.verifiers.client.ChatClient`, re-asks after a rejected answer included), to the same URL,
  with no pipeline around them; the order matters to a server that reuses the previous prompt's prefix
  (llama.cpp: a re-ask right after its first ask is mostly cached);

the two interleaved, ``rounds`` times (medcorr first in odd rounds, the plain client first in even ones, so
a drift of the server's or the machine's speed does not favour one), and reports notes/s, the paired ratio
medcorr ÷ plain client, and per note what the verifier's counters saw: calls, prompt and completion tokens,
cache hits, unverified notes.
A first pass with the cache in a fresh temporary directory (which also warms the server) and a second pass
over the same notes show what a cached re-run costs (its calls must be 0).

The plain-client comparison needs ``medcorr.ChatVerifier.v1`` (the verifier that owns a chat client); other
verifiers (e.g. ``medcorr.VotingVerifier.v1``) get the medcorr figures only, at their configured settings.
Note text never reaches the report: only counts and timings do.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

CHAT_VERIFIER = "medcorr.ChatVerifier.v1"
PLAIN_USER_AGENT = "medcorr-bench-plain-client"
WARMUP_NOTES = 1  # the longest note(s), through each fresh pipeline before its timed passes
TARGET_VS_PLAIN = 0.9
COUNTERS = ("calls", "prompt_tokens", "completion_tokens", "cache_hits", "failures")


def _progress(message: str) -> None:
    import sys

    print(f"bench: verifier: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class VerifierConfig:
    """Where the verifier sits in a pipeline config: the medcorr component's name and the verifier's
    registered function (``@medcorr_verifiers``)."""

    component: str
    function: str
    max_concurrency: int | None

    @property
    def key(self) -> str:
        """The dotted config path of the verifier block."""
        return f"components.{self.component}.verifier"

    @property
    def plain_client(self) -> bool:
        """Whether the plain-client comparison (and the concurrency sweep) applies."""
        return self.function == CHAT_VERIFIER


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` config overrides (dotted spaCy config paths); a value is read as JSON when it parses
    (``4``, ``null``, ``true``, ``"x"``), else as a string, as spaCy's own command-line overrides are."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or "." not in key:
            raise ValueError(f"--set expects a dotted config path and a value, KEY=VALUE "
                             f"(e.g. components.medcorr.verifier.base_url=http://127.0.0.1:8080/v1), got {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except ValueError:
            overrides[key.strip()] = value
    return overrides


def find_verifier(config: str | Path, overrides: dict[str, Any]) -> VerifierConfig | None:
    """The verifier of a pipeline ``.cfg`` (or saved pipeline directory), read from the config without
    building anything; None when its medcorr component has no verifier."""
    from spacy.util import load_config

    path = Path(config)
    cfg_file = path / "config.cfg" if path.is_dir() else path
    if not cfg_file.is_file():
        raise FileNotFoundError(f"pipeline config not found: {config}")
    cfg = load_config(cfg_file, overrides=dict(overrides), interpolate=False)
    for name, component in (cfg.get("components") or {}).items():
        if component.get("factory") != "medcorr":
            continue
        block = component.get("verifier")
        if block:
            concurrency = block.get("max_concurrency")
            return VerifierConfig(name, str(block.get("@medcorr_verifiers", "")),
                                  int(concurrency) if concurrency is not None else None)
    return None


# ===================================================================================== the worker


class _BodyRecorder:
    """Records the bytes of every request a :class:`~medcorr.verifiers.client.ChatClient` sends (its
    ``encode``), by wrapping its public ``complete`` on the instance (removed by ``close``)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        original = client.complete

        def complete(body: dict[str, Any], request_id: str) -> Any:
            with self._lock:
                self.bodies.append(client.encode(body))
            return original(body, request_id)

        client.complete = complete

    def close(self) -> list[bytes]:
        del self.client.complete  # the class's method again
        return self.bodies


def plain_client(url: str, headers: dict[str, str], bodies: Sequence[bytes], concurrency: int,
                 timeout: float) -> dict[str, Any]:
    """Send every body with ``concurrency`` threads (one ``urllib`` POST each, as the verifier's client does)
    and read the replies: seconds, the server's token counts, failed requests."""
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "failed": 0}
    lock = threading.Lock()

    def post(body: bytes) -> None:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                usage = json.loads(response.read().decode("utf-8")).get("usage") or {}
        except (urllib.error.URLError, OSError, ValueError):
            with lock:
                totals["failed"] += 1
            return
        with lock:
            totals["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
            totals["completion_tokens"] += int(usage.get("completion_tokens") or 0)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="medcorr-bench-plain") as pool:
        list(pool.map(post, bodies))
    return {"seconds": time.perf_counter() - started, "requests": len(bodies), **totals}


def medcorr_pass(nlp: Any, verifier: Any, texts: Sequence[str], batch_size: int) -> dict[str, Any]:
    """One pass of ``nlp.pipe`` over ``texts`` (batches of ``batch_size`` notes, or of the verifier's notes in
    flight when more): seconds, the verifier's counters over the pass, the verdicts' statuses. medcorr's
    lookup caches are emptied first, as in the bench's other pipeline passes."""
    from medcorr.lexicon import Lexicon
    from medcorr.pipeline import verifier_batch

    Lexicon.clear_default_caches()
    before = verifier.stats()
    started = time.perf_counter()
    docs = nlp.pipe(texts, batch_size=verifier_batch(nlp, batch_size))
    statuses = Counter(doc._.medcorr.status.value for doc in docs)
    seconds = time.perf_counter() - started
    after = verifier.stats()
    counters = {key: int(after.get(key, 0)) - int(before.get(key, 0)) for key in COUNTERS}
    return {"seconds": seconds, "notes": len(texts), **counters, "statuses": dict(sorted(statuses.items()))}


def verifier_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """All of the verifier section in one process (see the module docstring); ``spec`` holds the config,
    its overrides, the verifier's place, the sweep, the rounds, the batch size and the note texts."""
    from medcorr.pipeline import build_pipeline

    texts: list[str] = spec["texts"]
    batch_size, rounds = int(spec["batch_size"]), int(spec["rounds"])
    where = VerifierConfig(spec["component"], spec["function"], spec.get("max_concurrency"))
    sweep: list[int | None] = list(spec["concurrencies"]) or [None]

    def build(concurrency: int | None, cache_dir: str | None) -> tuple[Any, Any]:
        overrides = {**spec["overrides"], f"{where.key}.cache_dir": cache_dir}
        if concurrency is not None:
            overrides[f"{where.key}.max_concurrency"] = concurrency
        nlp = build_pipeline(spec["config"], overrides)
        return nlp, nlp.get_pipe(where.component).verifier

    passes: list[dict[str, Any]] = []
    fill_concurrency = max((c for c in sweep if c is not None), default=None)
    with tempfile.TemporaryDirectory(prefix="medcorr-bench-cache-") as cache_dir:
        _progress("first pass (cache on, fresh), recording the request bodies; then the cached re-run")
        nlp, verifier = build(fill_concurrency, cache_dir)
        recorder = _BodyRecorder(verifier.client) if where.plain_client else None
        try:
            fill = medcorr_pass(nlp, verifier, texts, batch_size)
        finally:
            bodies = recorder.close() if recorder is not None else []
        rerun = medcorr_pass(nlp, verifier, texts, batch_size)
        _progress(f"  first pass: {fill['calls']} calls in {fill['seconds']:.1f} s; cached re-run: "
                  f"{rerun['calls']} calls, {rerun['cache_hits']} cache hits")
        name = str(getattr(verifier, "name", where.function))
        client = getattr(verifier, "client", None)
        del nlp, verifier
    passes += [{"kind": "cache fill", "concurrency": fill_concurrency, **fill},
               {"kind": "cached rerun", "concurrency": fill_concurrency, **rerun}]
    url = client.url if client is not None else None
    headers = {**client.headers(), "User-Agent": PLAIN_USER_AGENT} if client is not None else {}
    timeout = float(getattr(client, "timeout", 60.0) or 60.0)

    pipelines: dict[int | None, tuple[Any, Any]] = {}
    recorders: dict[int | None, _BodyRecorder] = {}
    warmup = sorted(texts, key=len, reverse=True)[:WARMUP_NOTES]
    for concurrency in sweep:
        _progress(f"max_concurrency {concurrency or 'from the config'}: building, warm-up on {len(warmup)} note(s)")
        pipelines[concurrency] = build(concurrency, None)
        if where.plain_client:
            recorders[concurrency] = _BodyRecorder(pipelines[concurrency][1].client)
        passes.append({"kind": "warm-up", "concurrency": concurrency,
                       **medcorr_pass(*pipelines[concurrency], warmup, batch_size)})
    # the plain client replays the bodies of the latest medcorr pass at its concurrency, in the order medcorr
    # sent them: a server that reuses the previous prompt's prefix (llama.cpp) is as fast for both only then
    replay: dict[int | None, list[bytes]] = {}
    timed: dict[int | None, dict[str, list[dict[str, Any]]]] = {c: {"medcorr": [], "plain": []} for c in sweep}
    for r in range(rounds):
        for concurrency in sweep:
            order = ("medcorr", "plain") if r % 2 == 0 else ("plain", "medcorr")
            _progress(f"round {r + 1}/{rounds}, max_concurrency {concurrency or 'from the config'}: "
                      + " then ".join(o for o in order if o == "medcorr" or bodies))
            for what in order:
                if what == "plain":
                    if bodies:
                        result = plain_client(url, headers, replay[concurrency], concurrency or 1, timeout)
                        timed[concurrency]["plain"].append(result)
                        _progress(f"  plain client: {len(texts) / result['seconds']:.3f} notes/s, "
                                  f"{result['requests']} requests, {result['failed']} failed")
                    continue
                sent = len(recorders[concurrency].bodies) if where.plain_client else 0
                result = medcorr_pass(*pipelines[concurrency], texts, batch_size)
                if where.plain_client:
                    replay[concurrency] = recorders[concurrency].bodies[sent:]
                timed[concurrency]["medcorr"].append(result)
                passes.append({"kind": "timed", "concurrency": concurrency, "round": r + 1, **result})
                _progress(f"  medcorr: {len(texts) / result['seconds']:.3f} notes/s, {result['calls']} calls, "
                          f"{result['statuses'].get('unverified', 0)} unverified")
    for recorder in recorders.values():
        recorder.close()
    rows = [summarise_row(concurrency, timed[concurrency]["medcorr"], timed[concurrency]["plain"], len(texts))
            for concurrency in sweep]
    return {"status": "ok", "verifier": name, "notes": len(texts), "rounds": rounds, "batch_size": batch_size,
            "plain_client": ({"first_pass_requests": len(bodies), "url_path": "/chat/completions",
                              "user_agent": PLAIN_USER_AGENT} if where.plain_client else
                             {"status": "skipped", "note": f"the plain-client comparison needs {CHAT_VERIFIER} "
                                                           f"(this pipeline's verifier: {where.function})"}),
            "rows": rows,
            "cached_rerun": {"concurrency": fill_concurrency, "first_pass_calls": fill["calls"],
                             "calls": rerun["calls"], "cache_hits": rerun["cache_hits"],
                             "notes_per_s": len(texts) / rerun["seconds"] if rerun["seconds"] else None},
            "passes": passes}


def summarise_row(concurrency: int | None, medcorr: Sequence[dict[str, Any]], plain: Sequence[dict[str, Any]],
                  notes: int) -> dict[str, Any]:
    """One concurrency's figures from its timed passes: medians of notes/s, the paired ratios (each medcorr
    pass ÷ the plain-client pass of the same round), and the verifier's counters per note (over all passes)."""
    medcorr_rates = [notes / p["seconds"] for p in medcorr]
    plain_rates = [notes / p["seconds"] for p in plain]
    paired = [m / p for m, p in zip(medcorr_rates, plain_rates)]
    count = max(1, notes * len(medcorr))
    totals = {key: sum(p[key] for p in medcorr) for key in COUNTERS}
    row: dict[str, Any] = {
        "concurrency": concurrency,
        "medcorr_notes_per_s": statistics.median(medcorr_rates) if medcorr_rates else None,
        "medcorr_notes_per_s_all": medcorr_rates,
        "plain_notes_per_s": statistics.median(plain_rates) if plain_rates else None,
        "plain_notes_per_s_all": plain_rates,
        "ratios": paired,
        "ratio": statistics.median(paired) if paired else None,
        "calls_per_note": totals["calls"] / count,
        "prompt_tokens_per_note": totals["prompt_tokens"] / count,
        "completion_tokens_per_note": totals["completion_tokens"] / count,
        "cache_hits": totals["cache_hits"],
        "unverified_notes": [p["statuses"].get("unverified", 0) for p in medcorr],
        "failed_judgements": totals["failures"],
        "statuses": medcorr[-1]["statuses"] if medcorr else {},
    }
    if plain:
        row["plain_requests_per_note"] = sum(p["requests"] for p in plain) / max(1, notes * len(plain))
        row["plain_prompt_tokens_per_note"] = sum(p["prompt_tokens"] for p in plain) / max(1, notes * len(plain))
        row["plain_completion_tokens_per_note"] = (sum(p["completion_tokens"] for p in plain)
                                                   / max(1, notes * len(plain)))
        row["plain_failed_requests"] = sum(p["failed"] for p in plain)
    return row


# ===================================================================================== the report


def evaluate_targets(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The verifier targets: medcorr ≥ 0.9 × the plain client at each concurrency (the smallest ratio),
    medcorr at its best concurrency above 1 faster than the plain client one request at a time, and a cached
    re-run without calls. ``met`` is None when the sweep did not measure what a target needs."""
    rows = section.get("rows", [])
    ratios = [row["ratio"] for row in rows if row.get("ratio") is not None]
    serial = next((row.get("plain_notes_per_s") for row in rows if row["concurrency"] == 1), None)
    concurrent = [row["medcorr_notes_per_s"] for row in rows
                  if row["concurrency"] is not None and row["concurrency"] > 1 and row.get("medcorr_notes_per_s")]
    one_at_a_time = max(concurrent) / serial if concurrent and serial else None
    cached_calls = section.get("cached_rerun", {}).get("calls")
    targets = {  # name: (measured value, target as written, whether a value meets it, description)
        "verifier_vs_plain_client": (min(ratios) if ratios else None, f"≥ {TARGET_VS_PLAIN:g}",
                                     lambda value: value >= TARGET_VS_PLAIN,
                                     "medcorr nlp.pipe notes/s ÷ plain client notes/s, same bodies and concurrency "
                                     "(median of the paired rounds; the smallest over the sweep)"),
        "verifier_vs_one_at_a_time": (one_at_a_time, "> 1", lambda value: value > 1,
                                      "medcorr notes/s at its best max_concurrency above 1 ÷ plain client notes/s "
                                      "one request at a time (must exceed 1)"),
        "verifier_cached_rerun_calls": (cached_calls, "0", lambda value: value <= 0,
                                        "calls of a re-run answered from the verifier's cache"),
    }
    return {name: {"description": description, "value": value, "target": target,
                   "met": None if value is None else meets(value)}
            for name, (value, target, meets, description) in targets.items()}


def markdown_lines(section: dict[str, Any], fmt: Any) -> list[str]:
    """The verifier section of the Markdown report, without its targets table (``fmt`` formats a number like
    the rest of the report)."""
    title = f"Verifier stage: `{section.get('config')}`"
    if section.get("status") != "ok":
        return ["", f"{title}: {section.get('status')}: {section.get('note', '')}"]
    plain = section.get("plain_client", {})
    overrides = section.get("overrides") or {}
    lines = [
        "", f"{title} ({section['verifier']})", "",
        f"{section['notes']} notes through `nlp.pipe` (batches of at least {section['batch_size']}) with the verifier's "
        "disk cache off, at each max_concurrency, against a plain client (a thread pool of as many urllib POSTs) "
        "sending the request bodies of medcorr's latest pass at that concurrency in its order (re-asks included) "
        f"to the same endpoint; {section['rounds']} interleaved round(s), the order alternating; "
        "medians, and the ratio as the median of each round's medcorr pass ÷ its plain-client pass."
        + (f" Config overrides: {', '.join(f'{k} = {json.dumps(v)}' for k, v in overrides.items())}."
           if overrides else ""),
        "",
        "| max_concurrency | medcorr notes/s | plain client notes/s | medcorr ÷ plain | calls/note "
        "| prompt tokens/note | completion tokens/note | cache hits | unverified notes per pass |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in section["rows"]:
        concurrency = row["concurrency"] if row["concurrency"] is not None else "config"
        lines.append(
            f"| {concurrency} | {fmt(row['medcorr_notes_per_s'], 2)} | {fmt(row['plain_notes_per_s'], 2)} "
            f"| {fmt(row['ratio'], 2)} | {fmt(row['calls_per_note'], 2)} | {fmt(row['prompt_tokens_per_note'], 0)} "
            f"| {fmt(row['completion_tokens_per_note'], 0)} | {row['cache_hits']} "
            f"| {', '.join(map(str, row['unverified_notes']))} |")
    if plain.get("status") == "skipped":
        lines += ["", f"Plain client: skipped, {plain['note']}."]
    cached = section["cached_rerun"]
    lines += ["", f"Cached re-run (the same notes again, cache in a fresh temporary directory filled by a first pass "
                  f"of {cached['first_pass_calls']} calls): {cached['calls']} calls, {cached['cache_hits']} cache hits, "
                  f"{fmt(cached['notes_per_s'], 1)} notes/s."]
    return lines
