"""``medcorr bench``: throughput, latency, memory, cold start and hardware efficiency of the runtime.

Every figure is measured on the same notes, with the same batches of notes, the same windows per model call
and the same thread count, after a warm-up:

* the detector alone, with the same weights as ONNX int8 (the shipped runtime), ONNX fp32 and PyTorch fp32
  eager: notes/s, sentences/s, tokens/s (real tokens, padding excluded), per-note latency (each note run
  alone, as a batch of one), peak RSS; plus ONNX int8 with one model call per batch of notes (padded to
  its longest window), to show what the one-window-per-call CPU default saves;
* the spaCy pipeline end to end (``nlp.pipe`` with medspaCy's PyRuSH, target matcher and ConText, then
  medcorr with its default generator; the medspaCy components alone; medcorr alone on a blank English
  pipeline);
* cold start: seconds from ``import spacy`` to the first finished note, in a fresh interpreter;
* the model's FLOPs per token (from the ONNX graph) and the fraction of the machine's matrix-multiply rate
  that the detector achieves: against the rate sampled between the chunks of the same pass (the target's
  figure, :mod:`medcorr.benchmark.matmul_rate`), and against the best rate of the run's separate measurements;
* where the int8 detector's time goes: onnxruntime's kernel times by op class (int8 matmuls, attention
  matmuls, softmax, layer norm, GELU, the rest) over a sample of notes, and the matmul fraction it would
  reach if only its int8 matmuls took time.
* with ``--config CFG`` naming a pipeline with a language-model verifier: that pipeline end to end through
  ``nlp.pipe`` at each verifier ``max_concurrency`` of a sweep, against a plain concurrent client sending the
  same request bodies, with the verifier's calls, tokens, cache hits and unverified notes per note, and a
  cached re-run (:mod:`medcorr.benchmark.verifier`). Without a verifier nothing of this runs.

Each variant runs in its own subprocess, so that its peak RSS is its own and one variant's allocations or
thread pools do not slow the next. The ``--repeat`` passes are rounds: each round runs every measurement
once, so a machine whose speed drifts over minutes (a shared VM) slows all of a round's measurements
alike and the ratios of the medians hold. Neither runtime busy-waits: onnxruntime runs with ``allow_spinning=0``
(the detector's setting) and PyTorch with ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it.
Note text never reaches the output: only counts and timings do.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from medcorr.cli import UsageError
from medcorr.benchmark.matmul_rate import SAMPLE_RUNS, SAMPLE_SHAPE, RateSampler, SamplerUnavailable

RESULT_MARKER = "MEDCORR_BENCH_RESULT "
DEFAULT_BATCH_SIZE = 32
DEFAULT_REPEAT = 3
LATENCY_MIN_SAMPLES = 100
LATENCY_MAX_NOTES = 100
PROGRESS_EVERY_S = 10.0
MIB = 1024 * 1024
GIB = 1024 * MIB
PROFILE_MAX_NOTES = 64  # notes whose windows the int8 op-time profile runs (evenly spaced)
PROFILE_WARMUP_CALLS = 3  # model calls before the profiled ones (their events are dropped)
#: onnxruntime op types by what they compute, for the int8 detector's op-time profile (the rest: elementwise
#: and shape ops such as Add, Transpose, Reshape, Cast).
OP_CLASSES: dict[str, frozenset[str]] = {
    "int8 matmul (weights, with activation quantization)": frozenset({
        "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger", "DynamicQuantizeLinear", "QAttention"}),
    "fp32 matmul (attention scores and values)": frozenset({"MatMul", "FusedMatMul", "Gemm"}),
    "softmax": frozenset({"Softmax"}),
    "layer norm": frozenset({"LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization"}),
    "gelu": frozenset({"Gelu", "BiasGelu", "FastGelu", "Erf"}),
}
OTHER_OPS = "elementwise and shape ops"
INT8_MATMUL_CLASS = next(iter(OP_CLASSES))
VARIANT_LABELS = {
    "onnx_int8": "ONNX int8 (shipped)",
    "onnx_int8_batched": "ONNX int8, one call per batch of notes (padded)",
    "onnx_fp32": "ONNX fp32",
    "torch_fp32": "PyTorch fp32 eager",
}
PIPELINE_LABELS = {
    "medspacy": "nlp.pipe: medspaCy (PyRuSH + target matcher + ConText) + medcorr",
    "medspacy_fast": "nlp.pipe: medspaCy with medcorr_sentencizer in PyRuSH's place (+ target matcher + ConText) + medcorr",
    "blank": "nlp.pipe: blank English + medcorr",
    "medspacy_only": "nlp.pipe: medspaCy components alone (same process, before medcorr is added)",
}


PIPELINES = ("medspacy", "medspacy_fast", "blank")
COLD_START_LABELS = {
    "default": "default pipeline (blank English + medcorr), this environment",
    "default_runtime": "default pipeline, runtime install (torch not importable)",
    "medspacy": "medspaCy (medspacy.load()) + medcorr",
}


@dataclass(frozen=True)
class Target:
    """One performance target of the issue: ``value op bound``."""

    name: str
    description: str
    bound: float
    higher_is_better: bool


TARGETS: tuple[Target, ...] = (
    Target("int8_vs_torch_fp32", "ONNX int8 notes/s ÷ PyTorch fp32 notes/s", 3.0, True),
    Target("end_to_end_vs_detector", "nlp.pipe (medspaCy with medcorr_sentencizer + medcorr) notes/s ÷ "
           "detector-only int8 notes/s (timed in the same process before and after each pass; median)", 0.7, True),
    Target("peak_rss_gib", "peak RSS of the end-to-end pipelines (the larger), GiB", 1.0, False),
    Target("cold_start_s", "cold start (import spacy → first finished note, default pipeline, runtime install: "
           "torch not importable), s", 3.0, False),
    Target("int8_matmul_fraction", "ONNX int8 useful FLOP/s ÷ int8 matmul FLOP/s sampled during the same passes "
           "(median over the passes)", 0.40, True),
)


# ============================================================================================ CLI


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command."""
    parser = subparsers.add_parser(
        "bench",
        help="measure throughput, latency, memory and cold start of the runtime",
        description=(
            "Benchmark the medcorr runtime on the same notes with the same batch size and threads: the "
            "detector as ONNX int8 / ONNX fp32 / PyTorch fp32, the spaCy pipeline end to end, cold start, "
            "and the fraction of the machine's matrix-multiply rate achieved (against the rate sampled between the "
            "detector's batches, and against the best separate reading). Prints a Markdown table, or "
            "one JSON object with --json. Progress goes to stderr."
        ),
        epilog=(
            "Example: medcorr bench --notes MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv "
            "--model-dir runs/default-model --checkpoint runs/default-ckpt --repeat 3"
        ),
    )
    parser.add_argument("--notes", metavar="CSV",
                        help="a MEDEC CSV (its sentence boundaries are used); default: the example notes shipped "
                             "with the package")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="use only the first N notes (0 = all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every figure and target")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, metavar="N",
                        help=f"rounds, each with one timed pass of every measurement in turn; the median is "
                             f"reported (default {DEFAULT_REPEAT})")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"notes per batch, for every variant and nlp.pipe (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--window-batch", type=int, default=0, metavar="N",
                        help="encoder windows per model call, for every variant and nlp.pipe (default 0 = the "
                             "runtime's CPU default, one window per call)")
    parser.add_argument("--threads", type=int, default=0, metavar="N", help="compute threads (default 0 = all cores)")
    parser.add_argument("--model-dir", metavar="DIR",
                        help="a medcorr model directory (default: the shipped model); the fp32 variant needs "
                             "its model.fp32.onnx")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="the PyTorch checkpoint of the same weights (medcorr train output), for the "
                             "PyTorch fp32 variant; needs the 'train' extra")
    verifier = parser.add_argument_group(
        "verifier stage", "measured only when --config names a pipeline whose medcorr component has a verifier")
    verifier.add_argument("--config", metavar="CFG",
                          help="a pipeline .cfg or saved pipeline directory with a verifier (e.g. "
                               "pipelines/medcorr_verifier_llamacpp.cfg): adds the verifier section, that pipeline "
                               "through nlp.pipe against a plain client sending the same requests")
    verifier.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                          help="override a setting of the --config pipeline (dotted config path, value read as "
                               "JSON when it parses), e.g. --set components.medcorr.verifier.base_url="
                               "http://127.0.0.1:8080/v1; repeatable")
    verifier.add_argument("--verifier-concurrency", type=int, nargs="+", metavar="N",
                          help="the verifier max_concurrency values to measure (default: 1 and the config's)")
    verifier.add_argument("--verifier-only", action="store_true",
                          help="measure the verifier section only (skip the detector, pipeline, cold-start and "
                               "matmul measurements)")
    parser.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """Handler of ``medcorr bench``."""
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.window_batch < 0:
        raise UsageError(f"--window-batch must be 0 (runtime default) or more, got {args.window_batch}")
    if args.threads < 0:
        raise UsageError(f"--threads must be 0 (all cores) or more, got {args.threads}")
    if args.limit < 0:
        raise UsageError(f"--limit must be 0 (all) or more, got {args.limit}")
    verifier = verifier_plan(args)
    if args.verifier_only:
        report = verifier_benchmark(args.notes, args.limit, args.batch_size, args.repeat, verifier)
    else:
        report = benchmark(
            notes_csv=args.notes, model_dir=args.model_dir, checkpoint=args.checkpoint, repeat=args.repeat,
            batch_size=args.batch_size, threads=args.threads or _available_cores(), limit=args.limit,
            window_batch=args.window_batch, verifier=verifier,
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_markdown(report))
    return 0


def verifier_plan(args: argparse.Namespace) -> dict[str, Any] | None:
    """The verifier measurement the arguments ask for (config, overrides, sweep), or None without one.

    The config is only read here, never built: the pipeline and its verifier are built in the verifier
    worker, so a bench without ``--config`` (or with a config that has no verifier) sends no request."""
    from medcorr.benchmark.verifier import find_verifier, parse_settings

    settings = getattr(args, "settings", None) or []
    concurrencies = getattr(args, "verifier_concurrency", None)
    if not getattr(args, "config", None):
        if settings or concurrencies or getattr(args, "verifier_only", False):
            raise UsageError("--set, --verifier-concurrency and --verifier-only need --config (a pipeline with a "
                             "verifier)")
        return None
    try:
        overrides = parse_settings(settings)
        where = find_verifier(args.config, overrides)
    except (ValueError, FileNotFoundError, OSError) as error:
        raise UsageError(f"--config: {error}") from None
    except Exception as error:  # noqa: BLE001 - a config spaCy cannot read (thinc's ConfigValidationError ...)
        raise UsageError(f"--config {args.config}: {type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    if where is None:
        if args.verifier_only or concurrencies:
            raise UsageError(f"--config {args.config}: its medcorr component has no verifier, so there is no "
                             "verifier stage to measure")
        return {"config": str(args.config), "overrides": overrides, "status": "skipped",
                "note": f"--config {args.config} has no verifier: no verifier section"}
    if concurrencies and any(c < 1 for c in concurrencies):
        raise UsageError(f"--verifier-concurrency values must be at least 1, got {concurrencies}")
    if concurrencies and not where.plain_client:
        raise UsageError(f"--verifier-concurrency needs medcorr.ChatVerifier.v1 as the verifier (this config has "
                         f"{where.function}): set each member's max_concurrency in the config instead")
    if where.plain_client:
        sweep = sorted(set(concurrencies or [1, where.max_concurrency or 1]))
    else:
        sweep = []
    return {"config": str(args.config), "overrides": overrides, "status": "planned", "component": where.component,
            "function": where.function, "max_concurrency": where.max_concurrency, "concurrencies": sweep}


def run_verifier(plan: dict[str, Any], notes: Sequence[tuple[str, Any]], batch_size: int,
                 repeat: int) -> dict[str, Any]:
    """The report's ``verifier`` section: the verifier worker's result (in a fresh interpreter) with the
    config, overrides and targets."""
    from medcorr.benchmark.verifier import evaluate_targets

    spec = {"kind": "verifier", "config": plan["config"], "overrides": plan["overrides"],
            "component": plan["component"], "function": plan["function"],
            "max_concurrency": plan["max_concurrency"], "concurrencies": plan["concurrencies"],
            "rounds": repeat, "batch_size": batch_size, "texts": [text for text, _ in notes]}
    _progress(f"verifier stage of {plan['config']}: {len(notes)} notes, max_concurrency "
              f"{', '.join(map(str, plan['concurrencies'])) or 'from the config'}, {repeat} round(s)")
    result = _run_worker(spec)
    section = {"config": plan["config"], "overrides": plan["overrides"], **result}
    if section.get("status") == "ok":
        section["targets"] = evaluate_targets(section)
    return section


def verifier_benchmark(notes_csv: str | None, limit: int, batch_size: int, repeat: int,
                       plan: dict[str, Any] | None) -> dict[str, Any]:
    """``--verifier-only``: the machine, the settings and the verifier section (no runtime measurements)."""
    if plan is None or plan.get("status") != "planned":  # pragma: no cover - refused by verifier_plan
        raise UsageError("--verifier-only needs --config with a verifier")
    load_before = _load_average()
    _progress("reading notes")
    notes, source = load_notes(notes_csv, limit)
    section = run_verifier(plan, notes, batch_size, repeat)
    return {
        "machine": _machine(load_before),
        "settings": {"notes_source": source, "notes": len(notes), "batch_size_notes": batch_size, "repeat": repeat,
                     "verifier_only": True},
        "verifier": section,
        "notes": [section["note"]] if section.get("status") != "ok" and section.get("note") else [],
    }


# ====================================================================================== the notes


def _available_cores() -> int:
    from medcorr.detector import available_cores

    return available_cores()


def examples_dir() -> Path:
    """The example notes shipped with the package."""
    from importlib import resources

    return Path(str(resources.files("medcorr") / "data" / "examples"))


def load_notes(notes_csv: str | None, limit: int = 0) -> tuple[list[tuple[str, list[tuple[int, int]]]], str]:
    """``(text, sentence spans)`` pairs and a description of the source.

    A MEDEC CSV uses its own sentence boundaries (``Sentences`` column aligned to the text); the shipped
    example notes are split by medspaCy's PyRuSH sentencizer, like the component splits a Doc without
    sentence boundaries.
    """
    if notes_csv:
        from medcorr.medec.io import MedecFormatError, align_sentences, read_medec

        path = Path(notes_csv)
        if not path.is_file():
            raise UsageError(f"--notes: no such file: {path}")
        try:
            records = read_medec(path)
        except MedecFormatError as error:
            raise UsageError(str(error)) from None
        records = [r for r in records if r.text.strip() and r.sentences]
        if limit:
            records = records[:limit]
        notes = [(r.text, align_sentences(r.text, [s.text for s in r.sentences])) for r in records]
        source = f"MEDEC {path.name}"
    else:
        paths = sorted(examples_dir().glob("*.txt"))
        if limit:
            paths = paths[:limit]
        texts = [p.read_text(encoding="utf-8") for p in paths]
        notes = list(zip(texts, pyrush_sentences(texts)))
        source = "medcorr example notes (medcorr/data/examples)"
    if not notes:
        raise UsageError("no notes to benchmark")
    return notes, source


def pyrush_sentences(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Sentence character spans from medspaCy's PyRuSH sentencizer (its debug log silenced)."""
    import spacy
    from PyRuSH import PyRuSHSentencizer

    from medcorr.component import _silence_pyrush, _spans_from_starts

    _silence_pyrush()
    nlp = spacy.blank("en")
    docs = [nlp.make_doc(text) for text in texts]
    starts = PyRuSHSentencizer(nlp).predict(docs)
    return [[(a, b) for a, b in _spans_from_starts(doc, guess) if doc.text[a:b].strip()]
            for doc, guess in zip(docs, starts)]


# ================================================================================ orchestration


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class _Ticker:
    """Progress lines on stderr for a long phase, at most one every :data:`PROGRESS_EVERY_S` seconds."""

    def __init__(self, label: str, total: int):
        self.label, self.total = label, max(1, total)
        self.start = self.last = time.perf_counter()

    def tick(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            _progress(f"{self.label}: {100 * done // self.total}% ({now - self.start:.0f} s)")


def _worker_env(spec: dict[str, Any]) -> dict[str, str]:
    """The worker's environment. PyTorch gets ``OMP_WAIT_POLICY=PASSIVE`` (unless set): its OpenMP threads
    then sleep between parallel regions like the detector's onnxruntime threads do (``allow_spinning=0``),
    so neither runtime busy-waits; on a machine with other load, spinning OpenMP threads made one-note
    PyTorch calls 20x slower."""
    env = dict(os.environ)
    if spec.get("variant") == "torch_fp32":
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its result is the marked line on stdout."""
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "medcorr.benchmark.bench", "--worker"], input=json.dumps(spec), capture_output=False,
        stdout=subprocess.PIPE, text=True, check=False, env=_worker_env(spec),
    )
    for line in reversed(process.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER):])
            result.setdefault("wall_s", time.perf_counter() - started)
            return result
    return {"status": "error", "note": f"worker exited with code {process.returncode} and no result (see stderr)"}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover
        return None


def _machine(load_before: list[float] | None) -> dict[str, Any]:
    """The report's ``machine`` section (the load average after: now)."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": _available_cores(),
            "platform": platform.platform(), "python": platform.python_version(), **_versions(),
            "load_average_before": load_before, "load_average_after": _load_average()}


def _fp32_file(model_dir: Path) -> Path:
    from medcorr.detector import META_FILE

    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    return model_dir / (meta.get("fp32_file") or "model.fp32.onnx")


def _torch_missing() -> str | None:
    import importlib.util

    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    return f"{' and '.join(missing)} not installed (pip install 'medcorr[train]')" if missing else None


def benchmark(notes_csv: str | None, model_dir: str | None, checkpoint: str | None, repeat: int,
              batch_size: int, threads: int, limit: int = 0, window_batch: int = 0,
              verifier: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every measurement and return the report (the ``--json`` object). ``verifier`` (from
    :func:`verifier_plan`) adds the ``verifier`` section, measured after the runtime rounds."""
    from medcorr.detector import CPU, META_FILE, MODEL_FILE, default_model_dir, resolve_batch_size

    window_batch = resolve_batch_size(window_batch, [CPU])
    model_path = Path(model_dir) if model_dir else default_model_dir()
    if not (model_path / META_FILE).is_file():
        raise UsageError(f"--model-dir: not a medcorr model directory (no {META_FILE}): {model_path}")
    _progress("reading notes")
    notes, source = load_notes(notes_csv, limit)
    sentences = sum(len(spans) for _, spans in notes)
    payload = {"notes": [[text, [list(s) for s in spans]] for text, spans in notes]}
    common = {"batch_size": batch_size, "window_batch": window_batch, "threads": threads, "repeat": repeat,
              "model_dir": str(model_path)}
    load_before = _load_average()

    measured, variants = _detector_plan(model_path, checkpoint, batch_size)
    skipped = [f"{VARIANT_LABELS[name]}: skipped, {variant['note']}" for name, variant in variants.items()]

    matmuls: list[dict[str, Any]] = []
    profile: dict[str, Any] = {}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in [*(n for n, _ in measured), *PIPELINES]}
    cold_rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in COLD_START_LABELS}
    first_note = notes[0][0]
    for r in range(repeat):
        # one timed pass of everything per round: a machine whose speed drifts over minutes slows every
        # measurement of a round alike, so the ratios of medians hold
        _progress(f"round {r + 1}/{repeat}: matrix-multiply rate (onnxruntime int8 and fp32)")
        matmuls.append(_run_worker({"kind": "matmul", "threads": threads}))
        for name, extra in measured:
            latency = extra.get("latency", True) and r == 0
            _progress(f"round {r + 1}/{repeat}: {VARIANT_LABELS[name]}: warm-up, one timed pass"
                      + (", per-note latency" if latency else ""))
            rounds[name].append(_run_worker({"kind": "detector", "variant": name, **common, **extra, **payload,
                                             "repeat": 1, "latency": latency, "latency_repeat": repeat}))
        if r == 0:
            _progress(f"op-time profile of the int8 detector (at most {PROFILE_MAX_NOTES} notes)")
            profile = _run_worker({"kind": "profile", **common, **payload})
        for name in PIPELINES:
            _progress(f"round {r + 1}/{repeat}: {PIPELINE_LABELS[name]}: warm-up, one timed pass"
                      + (" (medspaCy alone first)" if name == "medspacy" else ""))
            rounds[name].append(_run_worker({"kind": "pipeline", "pipeline": name, **common, **payload, "repeat": 1}))
        with_generator = rounds["medspacy"][0].get("generator") != "none"
        for name in COLD_START_LABELS:
            _progress(f"round {r + 1}/{repeat}: cold start ({name} pipeline), a fresh interpreter")
            cold_rounds[name].append(_cold_start(name, first_note, model_dir, 1, with_generator))

    for name, _ in measured:
        variants[name] = merge_rounds(rounds[name], len(notes), sentences)
    variants = {name: variants[name] for name in VARIANT_LABELS if name in variants}  # the table's order
    pipelines: dict[str, dict[str, Any]] = {name: merge_rounds(rounds[name], len(notes)) for name in PIPELINES}
    pipelines["medspacy_only"] = merge_rounds(
        [result.get("medspacy_only", {"status": "error", "note": "medspaCy pipeline not measured"})
         for result in rounds["medspacy"]], len(notes))
    for result in (pipelines["medspacy"], *rounds["medspacy"]):
        result.pop("medspacy_only", None)
    cold = {name: merge_cold_starts(runs) for name, runs in cold_rounds.items()}
    matmul = matmuls[0]
    for other in matmuls[1:]:
        matmul = _best_matmul(matmul, other)

    stats = variants["onnx_int8"].get("stats", {})
    flops = model_flops(model_path / MODEL_FILE, stats.get("window_lengths", []))
    for variant in variants.values():
        variant.get("stats", {}).pop("window_lengths", None)
    _add_efficiency(variants, flops, matmul)
    _add_profile_bound(profile, variants["onnx_int8"])
    report = {
        "machine": _machine(load_before),
        "settings": {"notes_source": source, "notes": len(notes), "sentences": sentences,
                     "batch_size_notes": batch_size, "window_batch": window_batch, "threads": threads, "repeat": repeat,
                     "model_dir": str(model_path), "checkpoint": checkpoint},
        "workload": stats,
        "detector": variants,
        "end_to_end": pipelines,
        "cold_start": cold,
        "flops": flops,
        "matmul": matmul,
        "int8_profile": profile,
        "targets": evaluate_targets(variants, pipelines, cold),
        "notes": skipped + _notes_of(matmul, flops, pipelines, cold),
    }
    if verifier is not None and verifier.get("status") == "planned":
        report["verifier"] = run_verifier(verifier, notes, batch_size, repeat)
        report["machine"]["load_average_after"] = _load_average()
    elif verifier is not None:
        report["notes"].append(verifier["note"])
    return report


def _detector_plan(model_path: Path, checkpoint: str | None, batch_size: int
                   ) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """The detector variants to measure (name, worker settings) and the skipped ones (name → status)."""
    from medcorr.detector import MODEL_FILE

    fp32 = _fp32_file(model_path)
    torch_reason = "no --checkpoint given" if not checkpoint else _torch_missing()
    if checkpoint and not torch_reason and not (Path(checkpoint) / "detector.pt").is_file():
        torch_reason = f"--checkpoint {checkpoint} has no detector.pt"
    plan: list[tuple[str, dict[str, Any] | None, str | None]] = [
        ("onnx_int8", {"model_file": MODEL_FILE}, None),
        ("onnx_int8_batched", {"model_file": MODEL_FILE, "window_batch": batch_size, "latency": False}, None),
        ("onnx_fp32", {"model_file": fp32.name} if fp32.is_file() else None,
         None if fp32.is_file() else f"no {fp32.name} in {model_path} (pass --model-dir of an export with "
                                     "keep_fp32, e.g. runs/default-model)"),
        ("torch_fp32", {"checkpoint": checkpoint} if not torch_reason else None, torch_reason),
    ]
    measured = [(name, extra) for name, extra, _ in plan if extra is not None]
    skipped = {name: {"status": "skipped", "note": reason} for name, extra, reason in plan if extra is None}
    return measured, skipped


def _best_matmul(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Per-dtype maximum of matmul-rate measurements (other load only ever lowers a rate)."""
    if first.get("status") != "ok" or second.get("status") != "ok":
        return first if first.get("status") == "ok" else second
    best = dict(first)
    for key in ("int8_gflops_per_s", "fp32_gflops_per_s"):
        best[key] = max(first[key], second[key])
    best["per_shape"] = {name: max(rate, second["per_shape"].get(name, 0.0))
                         for name, rate in first["per_shape"].items()}
    best["measurements"] = first.get("measurements", 1) + second.get("measurements", 1)
    return best


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("onnxruntime", "torch", "spacy", "medspacy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _notes_of(matmul: dict[str, Any], flops: dict[str, Any], pipelines: dict[str, dict[str, Any]],
              cold: dict[str, dict[str, Any]]) -> list[str]:
    notes = []
    for part in (matmul, flops, *pipelines.values(), *cold.values()):
        note = part.get("note")
        if note and note not in notes:
            notes.append(note)
    return notes


def _cold_start(pipeline: str, text: str, model_dir: str | None, repeat: int, with_generator: bool) -> dict[str, Any]:
    """Median over ``repeat`` fresh interpreters of ``import spacy`` → first finished note.

    ``default_runtime`` is the default pipeline in an interpreter where ``import torch`` fails, as in a
    runtime install (``pip install medcorr`` has no torch; spaCy's thinc imports torch when it is present,
    about a second here)."""
    config: dict[str, Any] = {}
    if model_dir:
        config["model_path"] = str(model_dir)
    if not with_generator:
        config["generator"] = None
    runs = []
    for _ in range(repeat):
        process = subprocess.run(
            [sys.executable, "-c", COLD_START_CODE], input=json.dumps({"pipeline": pipeline, "config": config,
                                                                        "text": text}),
            stdout=subprocess.PIPE, text=True, check=False,
        )
        lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARKER)]
        run = json.loads(lines[-1][len(RESULT_MARKER):]) if lines else {"error": f"exit code {process.returncode}"}
        if "error" in run or not run.get("verdict"):
            return {"status": "error", "note": f"cold start ({pipeline}) failed: {run.get('error', 'no verdict')}"}
        runs.append(run)
    result: dict[str, Any] = {"status": "ok", "pipeline": pipeline, "runs": len(runs),
                              "generator": "none" if not with_generator else "default"}
    median = _median_run(runs)
    result.update({key: median[key] for key in ("import_spacy_s", "build_s", "first_note_s", "total_s")})
    result["all_total_s"] = [run["total_s"] for run in runs]
    return result


def _median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median ``total_s`` (the lower one of an even count), so its parts add up."""
    ordered = sorted(runs, key=lambda run: run["total_s"])
    return ordered[(len(ordered) - 1) // 2]


def merge_cold_starts(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One cold-start figure from per-round :func:`_cold_start` results: the median round's, all totals."""
    failed = next((result for result in results if result.get("status") != "ok"), None)
    if failed is not None:
        return dict(failed)
    merged = dict(_median_run(results))
    merged["runs"] = sum(result["runs"] for result in results)
    merged["all_total_s"] = [total for result in results for total in result["all_total_s"]]
    return merged


def merge_rounds(results: Sequence[dict[str, Any]], notes: int, sentences: int | None = None) -> dict[str, Any]:
    """One figure per measurement from its per-round worker results: the median over every round's timed
    passes, the largest peak RSS, the latency and workload of the first round (the first failure, if any)."""
    failed = next((result for result in results if result.get("status") != "ok"), None)
    if failed is not None:
        return dict(failed)
    merged = dict(results[0])
    times = [seconds for result in results for seconds in result["seconds_all"]]
    seconds = statistics.median(times)
    merged.update({"seconds_all": times, "seconds_median": seconds, "notes_per_s": notes / seconds,
                   "rounds": len(results)})
    if all("detector_ratios" in result for result in results):
        ratios = [ratio for result in results for ratio in result["detector_ratios"]]
        detector_times = [t for result in results for t in result["detector_seconds_all"]]
        merged.update({"detector_ratios": ratios, "detector_ratio": statistics.median(ratios),
                       "detector_seconds_all": detector_times,
                       "detector_notes_per_s": notes / statistics.median(detector_times)})
    if all("matmul_capacity_gflop_all" in result for result in results):
        merged["matmul_capacity_gflop_all"] = [c for result in results for c in result["matmul_capacity_gflop_all"]]
    else:  # a fraction from some rounds only would not be the median over the passes
        merged.pop("matmul_capacity_gflop_all", None)
    if sentences is not None:
        merged["sentences_per_s"] = sentences / seconds
    if "stats" in merged:
        merged["tokens_per_s"] = merged["stats"]["tokens"] / seconds
    rss = [result["peak_rss_bytes"] for result in results if result.get("peak_rss_bytes")]
    merged["peak_rss_bytes"] = max(rss) if rss else None
    if "wall_s" in merged:
        merged["wall_s"] = sum(result.get("wall_s", 0.0) for result in results)
    return merged


COLD_START_CODE = r"""
import json, sys, time
spec = json.loads(sys.stdin.read())
if spec["pipeline"] == "default_runtime":
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not part of the runtime install")
    sys.meta_path.insert(0, _NoTorch())
t0 = time.perf_counter()
try:
    import spacy
    t1 = time.perf_counter()
    if spec["pipeline"] == "medspacy":
        import medspacy
        nlp = medspacy.load()
    else:
        nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config=spec["config"])
    t2 = time.perf_counter()
    verdict = nlp(spec["text"])._.medcorr
    t3 = time.perf_counter()
    result = {"import_spacy_s": t1 - t0, "build_s": t2 - t1, "first_note_s": t3 - t2, "total_s": t3 - t0,
              "verdict": verdict is not None}
except Exception as error:  # the type (and an import error's message) only: never note text
    detail = ": " + str(error).splitlines()[0][:200] if isinstance(error, ImportError) else ""
    result = {"error": type(error).__name__ + detail}
print("MEDCORR_BENCH_RESULT " + json.dumps(result))
"""


# =================================================================================== FLOPs, targets


def model_flops(model_file: Path, window_lengths: Sequence[int]) -> dict[str, Any]:
    """FLOPs of the encoder from its ONNX graph: ``2 × matmul weights`` per token plus attention.

    Weight matrices are the constant right-hand inputs of ``MatMul`` / ``MatMulInteger`` / ``Gemm`` nodes
    outside the task heads (the heads run once per sentence segment or have one output: negligible).
    Attention adds ``4 · L · d`` per token and layer for a window of ``L`` real tokens (``QKᵀ`` and
    ``A·V``), with ``d`` the hidden size (the most common weight input size) and one layer per ``Softmax``.
    """
    try:
        import onnx
        from onnx import numpy_helper  # noqa: F401
    except ImportError:
        return {"status": "skipped", "note": "FLOPs not computed: the 'onnx' package is not installed"}
    model = onnx.load(str(model_file), load_external_data=False)
    graph = model.graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    shapes[node.output[0]] = tuple(attribute.t.dims)
    params, sizes, layers = 0, [], 0
    for node in graph.node:
        if "_head" in node.name:
            continue
        if node.op_type == "Softmax":
            layers += 1
        if node.op_type in {"MatMul", "MatMulInteger", "Gemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}:
            shape = shapes.get(node.input[1]) if len(node.input) > 1 else None
            if shape is not None and len(shape) == 2:
                params += int(shape[0]) * int(shape[1])
                sizes.append(int(shape[0]))
    if not params or not sizes:
        return {"status": "skipped", "note": f"FLOPs not computed: no weight matrices found in {model_file.name}"}
    hidden = statistics.mode(sizes)
    tokens = int(sum(window_lengths))
    total = sum(2 * params * length + 4 * layers * hidden * length * length for length in window_lengths)
    return {
        "status": "ok", "matmul_weights": params, "layers": layers, "hidden": hidden,
        "flops_per_token_mean": total / tokens if tokens else None,
        "flops_per_token_at_300": 2 * params + 4 * layers * hidden * 300,
        "useful_flops_per_pass": total, "tokens_per_pass": tokens,
        "formula": "2·W + 4·layers·hidden·L per token (W = matmul weights, L = window length in real tokens)",
    }


def _add_efficiency(variants: dict[str, dict[str, Any]], flops: dict[str, Any], matmul: dict[str, Any]) -> None:
    """Useful GFLOP/s of each detector variant and its fraction of the matching matmul rate.

    ``matmul_fraction`` (the target's figure): per pass, the useful FLOPs ÷ the FLOPs the matmul could have
    done in the pass's seconds at the rate sampled during it; the median over the passes.
    ``matmul_fraction_of_best_rate``: the median pass's useful FLOP/s ÷ the best rate of the run's separate
    ``matmul`` measurements (one per round)."""
    total = flops.get("useful_flops_per_pass")
    for name, variant in variants.items():
        seconds = variant.get("seconds_median")
        if not total or not seconds:
            continue
        achieved = total / seconds
        variant["useful_gflops_per_s"] = achieved / 1e9
        rate = matmul.get("int8_gflops_per_s" if name.startswith("onnx_int8") else "fp32_gflops_per_s")
        variant["matmul_fraction_of_best_rate"] = achieved / (rate * 1e9) if rate else None
        capacities = variant.get("matmul_capacity_gflop_all")
        if capacities and len(capacities) == len(variant["seconds_all"]):
            variant["matmul_fractions"] = [total / 1e9 / capacity for capacity in capacities]
            variant["matmul_rate_during_passes_gflops_per_s"] = [
                capacity / passed for capacity, passed in zip(capacities, variant["seconds_all"])]
        variant["matmul_fraction"] = (statistics.median(variant["matmul_fractions"])
                                      if variant.get("matmul_fractions") else None)


def _add_profile_bound(profile: dict[str, Any], int8: dict[str, Any]) -> None:
    """The int8 matmul fraction the detector would reach if every op but its int8 matmuls took no time."""
    share = profile.get("shares", {}).get(INT8_MATMUL_CLASS) if profile.get("status") == "ok" else None
    fraction = int8.get("matmul_fraction")
    profile["matmul_fraction_if_only_int8_matmuls"] = fraction / share if share and fraction else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def evaluate_targets(variants: dict[str, dict[str, Any]], pipelines: dict[str, dict[str, Any]],
                     cold: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each target's measured value, bound and whether it is met (None when not measured)."""
    int8 = variants.get("onnx_int8", {})
    rss = max((pipelines.get(name, {}).get("peak_rss_bytes") or 0 for name in ("medspacy", "medspacy_fast")),
              default=0)
    values = {
        "int8_vs_torch_fp32": _ratio(int8.get("notes_per_s"), variants.get("torch_fp32", {}).get("notes_per_s")),
        "end_to_end_vs_detector": pipelines.get("medspacy_fast", {}).get("detector_ratio"),
        "peak_rss_gib": rss / GIB if rss else None,
        "cold_start_s": cold.get("default_runtime", {}).get("total_s"),
        "int8_matmul_fraction": int8.get("matmul_fraction"),
    }
    result = {}
    for target in TARGETS:
        value = values[target.name]
        met = None if value is None else (value >= target.bound if target.higher_is_better else value <= target.bound)
        result[target.name] = {"description": target.description, "value": value,
                               "target": f"{'≥' if target.higher_is_better else '≤'} {target.bound:g}", "met": met}
    return result


# ======================================================================================== Markdown


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.2g}"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown section (machine, workload, one table per measurement, targets; the
    verifier section when one was measured)."""
    if "detector" not in report:  # --verifier-only
        return _render_verifier_only(report)
    machine, settings, workload = report["machine"], report["settings"], report.get("workload", {})
    load = machine.get("load_average_before")
    lines = [
        "## Performance",
        "",
        f"Machine: {machine['cpu']}, {machine['usable_cores']} cores usable ({machine['cores']} online), "
        f"{settings['threads']} compute thread(s); onnxruntime {machine.get('onnxruntime')}, "
        f"torch {machine.get('torch') or 'not installed'}, Python {machine['python']}. "
        f"Load average before the run: {', '.join(map(str, load)) if load else 'unknown'}.",
        "",
        f"Notes: {settings['notes']} from {settings['notes_source']} ({settings['sentences']:,} sentences, "
        f"{_fmt(workload.get('tokens'), 0)} real tokens in {_fmt(workload.get('windows'), 0)} windows, "
        f"{_fmt(100 * workload['padding_fraction'] if workload.get('padding_fraction') is not None else None)}% "
        f"padding); batches of {settings['batch_size_notes']} notes, {settings.get('window_batch', '?')} "
        f"window(s) per model call (the shipped variant and the pipelines); median of {settings['repeat']} "
        f"round(s), each with one timed pass of every measurement (a fresh interpreter, after a warm-up on one batch of the longest "
        f"notes), so that a drift in the machine's speed slows them alike. Latency: each note run alone (a batch of "
        f"one note), p50/p99 over the notes (at most {LATENCY_MAX_NOTES}, evenly spaced). Tokens/s and GFLOP/s "
        "count real tokens only; padding: the extra positions the batches computed. Peak RSS: the whole process "
        "of that measurement (each runs in a fresh interpreter).",
        "",
        "| Runtime | notes/s | sentences/s | tokens/s | padding | p50 ms/note | p99 ms/note | peak RSS MiB "
        "| useful GFLOP/s | of matmul rate during the pass | of the run's best matmul rate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, variant in report["detector"].items():
        label = VARIANT_LABELS.get(name, name)
        if variant.get("status") != "ok":
            lines.append(f"| {label} | {variant.get('status')}: {variant.get('note', '')} | | | | | | | | | |")
            continue
        latency = variant.get("latency_ms") or {}
        paired_fraction, best_fraction = variant.get("matmul_fraction"), variant.get("matmul_fraction_of_best_rate")
        padding = variant.get("stats", {}).get("padding_fraction")
        lines.append(
            f"| {label} | {_fmt(variant['notes_per_s'])} | {_fmt(variant['sentences_per_s'], 0)} "
            f"| {_fmt(variant['tokens_per_s'], 0)} | {_fmt(100 * padding if padding is not None else None, 0)}% "
            f"| {_fmt(latency.get('p50'))} | {_fmt(latency.get('p99'))} "
            f"| {_fmt(variant['peak_rss_bytes'] / MIB, 0)} | {_fmt(variant.get('useful_gflops_per_s'))} "
            f"| {_fmt(100 * paired_fraction if paired_fraction is not None else None)}% "
            f"| {_fmt(100 * best_fraction if best_fraction is not None else None)}% |"
        )
    paired: list[str] = []
    for name, pipeline in report["end_to_end"].items():
        label = PIPELINE_LABELS.get(name, name)
        if pipeline.get("status") != "ok":
            lines.append(f"| {label} | {pipeline.get('status')}: {pipeline.get('note', '')} | | | | | | | | | |")
            continue
        rss = pipeline.get("peak_rss_bytes")
        lines.append(f"| {label} | {_fmt(pipeline['notes_per_s'])} | | | | | | "
                     f"{_fmt(rss / MIB if rss else None, 0)} | | | |")
        if pipeline.get("detector_ratio") is not None:
            paired.append(f"{label}: {_fmt(pipeline['detector_ratio'], 2)} (the detector alone ran at "
                          f"{_fmt(pipeline['detector_notes_per_s'])} notes/s in that process)")
    if paired:
        lines += ["", "Pipeline ÷ detector alone, each pipeline pass against the mean of detector-only passes "
                  "right before and after it in the same process (median over the passes): " + "; ".join(paired) + "."]
    lines += ["", "| Cold start (import spacy → first finished note) | total s | import spacy s | build pipeline s "
              "| first note s |", "|---|---:|---:|---:|---:|"]
    for name, cold in report["cold_start"].items():
        label = COLD_START_LABELS.get(name, name)
        if cold.get("status") != "ok":
            lines.append(f"| {label} | {cold.get('status')}: {cold.get('note', '')} | | | |")
            continue
        lines.append(f"| {label} | {_fmt(cold['total_s'], 2)} | {_fmt(cold['import_spacy_s'], 2)} "
                     f"| {_fmt(cold['build_s'], 2)} | {_fmt(cold['first_note_s'], 2)} |")
    flops, matmul = report["flops"], report["matmul"]
    lines.append("")
    if flops.get("status") == "ok":
        lines.append(
            f"Model FLOPs: {flops['matmul_weights'] / 1e6:.2f} M matmul weights, {flops['layers']} layers, hidden "
            f"{flops['hidden']}: {flops['flops_per_token_mean'] / 1e6:.1f} MFLOP/token on these notes "
            f"({flops['flops_per_token_at_300'] / 1e6:.1f} MFLOP/token at 300 tokens), counting real tokens only.")
    if matmul.get("status") == "ok":
        lines.append(
            f"Matrix-multiply rate measured in this run with onnxruntime ({settings['threads']} thread(s), best of "
            f"{matmul.get('measurements', 1)} measurement(s), one per round, and of "
            f"{', '.join('×'.join(map(str, s)) for s in matmul['shapes'])}): int8 (DynamicQuantizeMatMul) "
            f"{_fmt(matmul['int8_gflops_per_s'])} GFLOP/s, fp32 (MatMul) {_fmt(matmul['fp32_gflops_per_s'])} GFLOP/s. "
            f"During each detector pass the matching rate (int8 for the int8 variants, else fp32) is also sampled, "
            f"in a separate process, before each batch of notes and after the last (each sample: the best of "
            f"{SAMPLE_RUNS} runs of {'×'.join(map(str, SAMPLE_SHAPE))}); \"of matmul rate during the pass\" counts "
            f"each batch's seconds at the mean of the samples around it (median over the passes)"
            + _sampled_rate_summary(report["detector"]) + ".")
    lines += _profile_lines(report.get("int8_profile", {}))
    lines += _target_rows(report["targets"], "Target")
    if "verifier" in report:
        lines += _verifier_lines(report["verifier"])
    if report["notes"]:
        lines += [""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines)


def _target_rows(targets: dict[str, dict[str, Any]], heading: str) -> list[str]:
    """A Markdown table of targets: description, measured value, target, met."""
    lines = ["", f"| {heading} | measured | target | met |", "|---|---:|---:|:---:|"]
    for target in targets.values():
        met = {True: "yes", False: "**no**", None: "not measured"}[target["met"]]
        lines.append(f"| {target['description']} | {_fmt(target['value'], 2)} | {target['target']} | {met} |")
    return lines


def _verifier_lines(section: dict[str, Any]) -> list[str]:
    """The verifier section and its targets table."""
    from medcorr.benchmark.verifier import markdown_lines

    lines = markdown_lines(section, _fmt)
    if section.get("status") == "ok":
        lines += _target_rows(section.get("targets", {}), "Verifier target")
    return lines


def _render_verifier_only(report: dict[str, Any]) -> str:
    machine, settings = report["machine"], report["settings"]
    load = machine.get("load_average_before")
    lines = ["## Performance: verifier stage", "",
             f"Machine: {machine['cpu']}, {machine['usable_cores']} cores usable ({machine['cores']} online); "
             f"Python {machine['python']}. Load average before the run: "
             f"{', '.join(map(str, load)) if load else 'unknown'}; after: "
             f"{', '.join(map(str, machine.get('load_average_after') or [])) or 'unknown'}. "
             f"Notes: {settings['notes']} from {settings['notes_source']}."]
    lines += _verifier_lines(report["verifier"])
    if report["notes"]:
        lines += [""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines)


def _sampled_rate_summary(variants: dict[str, dict[str, Any]]) -> str:
    rates = variants.get("onnx_int8", {}).get("matmul_rate_during_passes_gflops_per_s")
    if not rates:
        return ""
    return (f"; the int8 rate during the shipped variant's passes: "
            f"{', '.join(_fmt(rate, 0) for rate in rates)} GFLOP/s")


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    if profile.get("status") != "ok" or not profile.get("shares"):
        return [] if not profile else ["", f"int8 op-time profile: {profile.get('status')}: {profile.get('note', '')}"]
    bound = profile.get("matmul_fraction_if_only_int8_matmuls")
    lines = ["", f"Where the int8 detector's time goes (onnxruntime kernel times, {profile['windows']} windows of "
                 f"{profile['notes']} notes, one call at a time, {profile['threads_per_call']} thread(s) per call as "
                 f"the detector runs them; {_fmt(profile['kernel_ms_per_window'], 2)} ms of kernels per window):",
             "", "| ops | share of kernel time |", "|---|---:|"]
    lines += [f"| {name} | {_fmt(100 * share)}% |" for name, share in profile["shares"].items()]
    if bound is not None:
        lines += ["", f"If every op but the int8 matmuls took no time, the detector would reach {_fmt(100 * bound)}% "
                      "of the int8 matmul rate sampled during its passes."]
    return lines


# ========================================================================================= workers


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (``q`` in [0, 100])."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


def _warmup_notes(notes: Sequence[tuple[str, Any]], batch_size: int) -> list[tuple[str, Any]]:
    """The ``batch_size`` longest notes: one batch of them sizes every buffer before timing starts."""
    return sorted(notes, key=lambda note: len(note[0]), reverse=True)[:batch_size]


def _evenly_spaced(notes: Sequence[Any], most: int) -> list[Any]:
    """At most ``most`` notes, evenly spaced over the set (all of them when fewer)."""
    if len(notes) <= most:
        return list(notes)
    step = len(notes) / most
    return [notes[int(i * step)] for i in range(most)]


def _workload(encoder: Any, notes: Sequence[tuple[str, Any]], batch_size: int, window_batch: int) -> dict[str, Any]:
    """Real tokens, windows and padding of the timed passes (chunks of ``batch_size`` notes, model calls of
    ``window_batch`` windows, as the detector forms them)."""
    from medcorr.encoding import length_buckets

    lengths, padded = [], 0
    for chunk in _chunks(notes, batch_size):
        windows = [w for ws in encoder.encode_notes(chunk) for w in ws]
        lengths += [w.length for w in windows]
        for bucket in length_buckets(windows, window_batch):
            padded += len(bucket) * max(windows[i].length for i in bucket)
    tokens = sum(lengths)
    return {"tokens": tokens, "windows": len(lengths), "padded_tokens": padded,
            "padding_fraction": 1 - tokens / padded if padded else 0.0, "window_lengths": lengths}


def _time_passes(label: str, run_chunk: Callable[[Sequence[Any]], Any], items: Sequence[Any], batch_size: int,
                 repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` passes of ``run_chunk`` over ``batch_size`` items at a time (see
    :func:`_time_stream_passes`, which empties medcorr's lookup caches before each pass)."""
    chunks = _chunks(items, batch_size)

    def run_stream(_: Sequence[Any]) -> Iterator[Any]:
        for chunk in chunks:
            run_chunk(chunk)
            yield from chunk

    return _time_stream_passes(label, run_stream, items, repeat)


def _time_stream_passes(label: str, run_stream: Callable[[Sequence[Any]], Iterable[Any]], items: Sequence[Any],
                        repeat: int) -> list[float]:
    """Seconds of each of ``repeat`` passes of an ``nlp.pipe``-like call over all items (so its batches can
    overlap each other, as in a user's ``nlp.pipe(texts)``), progress counted from its output. medcorr's
    lookup caches are emptied before each pass, so a pass over notes seen before is not faster than the
    first (spaCy's own tokenizer cache is left alone)."""
    from medcorr.lexicon import Lexicon

    times = []
    for r in range(repeat):
        Lexicon.clear_default_caches()
        ticker = _Ticker(f"{label} pass {r + 1}/{repeat}", len(items))
        start = time.perf_counter()
        for done, _ in enumerate(run_stream(items), 1):
            ticker.tick(done)
        times.append(time.perf_counter() - start)
    return times


def _time_sampled_passes(label: str, run_chunk: Callable[[Sequence[Any]], Any], items: Sequence[Any],
                         batch_size: int, repeat: int, sampler: RateSampler) -> tuple[list[float], list[float]]:
    """Seconds of each of ``repeat`` passes (the ``run_chunk`` calls only) and the GFLOP the machine's matmul
    could have done in them: the :class:`~medcorr.benchmark.matmul_rate.RateSampler` reads the rate before each chunk
    and after the last, and each chunk's seconds count at the mean of the two samples around it."""
    from medcorr.lexicon import Lexicon

    chunks = _chunks(items, batch_size)
    seconds, capacities = [], []
    for r in range(repeat):
        Lexicon.clear_default_caches()
        ticker = _Ticker(f"{label} pass {r + 1}/{repeat}", len(items))
        total = capacity = 0.0
        done, before = 0, sampler.sample()
        for chunk in chunks:
            start = time.perf_counter()
            run_chunk(chunk)
            elapsed = time.perf_counter() - start
            after = sampler.sample()
            total, capacity = total + elapsed, capacity + elapsed * (before + after) / 2
            before, done = after, done + len(chunk)
            ticker.tick(done)
        seconds.append(total)
        capacities.append(capacity)
    return seconds, capacities


def _detector_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Throughput and latency of one detector variant."""
    from medcorr.detector import OnnxDetector, TOKENIZER_FILE
    from medcorr.encoding import NoteEncoder

    notes = [(text, [tuple(s) for s in spans]) for text, spans in spec["notes"]]
    batch_size, threads, repeat = spec["batch_size"], spec["threads"], spec["repeat"]
    window_batch, variant = spec["window_batch"], spec["variant"]
    if variant == "torch_fp32":
        import torch

        from medcorr.train.trainer import load_checkpoint, predict_torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        import numpy as np

        np.finfo(np.float32), np.finfo(np.float64)  # numpy computes (and caches) its limits in IEEE mode
        torch.set_flush_denormal(True)  # the arithmetic mode of the ONNX detector's model threads
        checkpoint = Path(spec["checkpoint"])
        model, record = load_checkpoint(checkpoint)
        encoder = NoteEncoder(checkpoint / "backbone" / TOKENIZER_FILE, int(record["config"]["max_length"]))

        def predict(chunk: Sequence[Any]) -> Any:
            return predict_torch(model, encoder, chunk, batch_size=window_batch)
    else:
        detector = OnnxDetector(spec["model_dir"], batch_size=window_batch, num_threads=threads,
                                model_file=spec["model_file"])
        encoder = detector.encoder
        predict = detector.predict
    label = VARIANT_LABELS[variant]
    predict(_warmup_notes(notes, batch_size))
    sampled: dict[str, Any] = {}
    try:
        with RateSampler(int8=variant.startswith("onnx_int8"), threads=threads) as sampler:
            times, capacities = _time_sampled_passes(label, predict, notes, batch_size, repeat, sampler)
        sampled = {"matmul_capacity_gflop_all": capacities}
    except SamplerUnavailable as error:
        times = _time_passes(label, predict, notes, batch_size, repeat)
        sampled = {"matmul_samples_note": str(error)}
    sample = _evenly_spaced(notes, LATENCY_MAX_NOTES)
    # latency runs in one round only, with as many passes over the sample as the bench has rounds
    passes = 0
    if spec.get("latency", True):
        passes = min(spec.get("latency_repeat", repeat), max(1, math.ceil(LATENCY_MIN_SAMPLES / len(sample))))
    latencies: list[float] = []
    ticker = _Ticker(f"{label} latency", passes * len(sample))
    for _ in range(passes):
        for note in sample:
            start = time.perf_counter()
            predict([note])
            latencies.append(1000 * (time.perf_counter() - start))
            ticker.tick(len(latencies))
    stats = _workload(encoder, notes, batch_size, window_batch)
    seconds = statistics.median(times)
    sentences = sum(len(spans) for _, spans in notes)
    return {
        "status": "ok", "variant": variant, "seconds_median": seconds, "seconds_all": times,
        "notes_per_s": len(notes) / seconds, "sentences_per_s": sentences / seconds,
        "tokens_per_s": stats["tokens"] / seconds,
        "latency_ms": {"p50": _percentile(latencies, 50), "p99": _percentile(latencies, 99),
                       "mean": statistics.fmean(latencies), "samples": len(latencies)} if latencies else None,
        "peak_rss_bytes": _peak_rss_bytes(), "stats": stats, **sampled,
    }


def _profile_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Where the int8 detector's time goes: onnxruntime's per-op kernel times over the windows of a sample
    of notes, one call at a time with the detector's threads per call and graph optimizations."""
    import tempfile

    import onnxruntime as ort

    from medcorr.denormals import flush_denormals
    from medcorr.detector import CPU, OnnxDetector, run_in_batches
    from medcorr.ort_cache import disabled_optimizers, session_options

    flush_denormals()  # as in the detector's model threads; this worker process runs nothing else
    detector = OnnxDetector(spec["model_dir"], batch_size=spec["window_batch"], num_threads=spec["threads"])
    threads_per_call = max(1, (spec["threads"] or 1) // detector.concurrent_calls)
    notes = _evenly_spaced([(text, [tuple(s) for s in spans]) for text, spans in spec["notes"]], PROFILE_MAX_NOTES)
    windows = [w for ws in detector.encoder.encode_notes(notes) for w in ws]
    with tempfile.TemporaryDirectory(prefix="medcorr-profile-") as directory:
        options = session_options(ort, threads_per_call)
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(directory) / "int8")
        # the graph the detector runs on these windows: the unpadded one for one-window calls
        graph = detector.unpadded_file or detector.model_file
        session = ort.InferenceSession(str(detector.model_dir / graph), options, providers=[CPU],
                                       disabled_optimizers=disabled_optimizers([CPU]))
        def run_batch(batch: Any) -> tuple[Any, Any]:
            outputs = session.run(None, {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                                         "segment_mask": batch.segment_mask})
            return outputs[0], outputs[1]

        warmup = detector.encoder.collate(windows[:1])
        for _ in range(PROFILE_WARMUP_CALLS):
            run_batch(warmup)
        run_in_batches(detector.encoder, windows, detector.batch_size, run_batch)
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    kernel_us = op_class_times(events, skip_runs=PROFILE_WARMUP_CALLS)
    total = sum(kernel_us.values())
    return {"status": "ok", "windows": len(windows), "notes": len(notes), "threads_per_call": threads_per_call,
            "kernel_ms_per_window": total / 1000 / len(windows) if windows else None,
            "shares": {name: us / total for name, us in kernel_us.items()} if total else {}}


def op_class_times(events: Sequence[dict[str, Any]], skip_runs: int = 0) -> dict[str, float]:
    """Kernel microseconds per :data:`OP_CLASSES` class in an onnxruntime profile, leaving out the node
    events of its first ``skip_runs`` model runs (warm-up)."""
    run_ends = sorted(e["ts"] + e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    after = run_ends[skip_runs - 1] if 0 < skip_runs <= len(run_ends) else float("-inf")
    times = {name: 0.0 for name in (*OP_CLASSES, OTHER_OPS)}
    for event in events:
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        if event["ts"] <= after:
            continue
        op = event.get("args", {}).get("op_name", "")
        name = next((name for name, ops in OP_CLASSES.items() if op in ops), OTHER_OPS)
        times[name] += float(event["dur"])
    return times


def _safe_error(error: BaseException) -> str:
    """An error description without note text: the message only for import / registry errors."""
    import catalogue

    if isinstance(error, (ImportError, catalogue.RegistryError)):
        return f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return type(error).__name__


def _pipeline_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """``nlp.pipe`` throughput of a spaCy pipeline with medcorr.

    For the medspaCy pipeline, its own components are timed first (same process, same notes, before
    medcorr is added), so the report can split the end-to-end time between medspaCy and medcorr.
    """
    import spacy

    from medcorr.component import DEFAULT_GENERATOR, _silence_pyrush

    _silence_pyrush()
    texts = [text for text, _ in spec["notes"]]
    batch_size, repeat = spec["batch_size"], spec["repeat"]
    warmup = [text for text, _ in _warmup_notes([(t, None) for t in texts], batch_size)]
    result: dict[str, Any] = {"status": "ok", "pipeline": spec["pipeline"]}
    if spec["pipeline"] == "medspacy_fast":
        import medspacy

        nlp = medspacy.load()
        nlp.replace_pipe("medspacy_pyrush", "medcorr_sentencizer")
        nlp.rename_pipe("medspacy_pyrush", "medcorr_sentencizer")
    elif spec["pipeline"] == "medspacy":
        import medspacy

        nlp = medspacy.load()
        label = PIPELINE_LABELS["medspacy_only"]

        def run_plain(chunk: Sequence[str]) -> Iterator[Any]:
            return nlp.pipe(chunk, batch_size=batch_size)

        list(run_plain(warmup))
        times = _time_stream_passes(label, run_plain, texts, repeat)
        result["medspacy_only"] = {"status": "ok", "pipeline": "medspacy_only", "components": list(nlp.pipe_names),
                                   "seconds_median": statistics.median(times), "seconds_all": times,
                                   "notes_per_s": len(texts) / statistics.median(times), "peak_rss_bytes": None}
    else:
        nlp = spacy.blank("en")
    config = {"batch_size": spec["window_batch"], "num_threads": spec["threads"], "model_path": spec["model_dir"]}
    generator, note = "default", None
    try:
        nlp.add_pipe("medcorr", config={**config, "generator": DEFAULT_GENERATOR})
    except Exception as error:  # noqa: BLE001 - reported, then measured without a generator
        generator = "none"
        note = f"default generator unavailable ({_safe_error(error)}): pipelines measured without a generator"
        nlp.add_pipe("medcorr", config={**config, "generator": None})
    label = PIPELINE_LABELS[spec["pipeline"]]

    def run_stream(chunk: Sequence[str]) -> Iterator[Any]:
        for doc in nlp.pipe(chunk, batch_size=batch_size):
            assert doc._.medcorr is not None
            yield doc

    # The detector alone (this pipeline's own, on the CSV's sentences, batches of batch_size notes as in
    # the detector rows) is timed in this process right before and after each pipeline pass, so that the
    # end-to-end ratio does not compare passes minutes apart on a machine whose speed drifts.
    notes = [(text, [tuple(span) for span in spans]) for text, spans in spec["notes"]]
    detector = nlp.get_pipe("medcorr").detector
    detector_label = f"{label}: detector alone"
    try:
        list(run_stream(warmup))
        times, detector_times = [], _time_passes(detector_label, detector.predict, notes, batch_size, 1)
        for _ in range(repeat):
            times += _time_stream_passes(label, run_stream, texts, 1)
            detector_times += _time_passes(detector_label, detector.predict, notes, batch_size, 1)
    except Exception as error:  # noqa: BLE001 - a broken pipeline is a result, not a crash of the bench
        return {"status": "error", "note": f"{label} failed: {_safe_error(error)}", "generator": generator}
    seconds = statistics.median(times)
    # pipeline notes/s ÷ detector notes/s = detector seconds ÷ pipeline seconds (the mean of the two around)
    ratios = [(before + after) / 2 / pipeline for before, after, pipeline in
              zip(detector_times, detector_times[1:], times)]
    result.update({"components": list(nlp.pipe_names), "generator": generator, "note": note,
                   "seconds_median": seconds, "seconds_all": times, "notes_per_s": len(texts) / seconds,
                   "detector_seconds_all": detector_times, "detector_ratios": ratios,
                   "peak_rss_bytes": _peak_rss_bytes()})
    return result


def _matmul_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The machine's matrix-multiply rate with onnxruntime (:func:`medcorr.benchmark.matmul_rate.best_rate`)."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return {"status": "skipped", "note": "matmul rate not measured: the 'onnx' package is not installed "
                                             "(pip install onnx)"}
    from medcorr.benchmark.matmul_rate import best_rate

    return best_rate(spec["threads"])


def _verifier_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """The verifier section (:func:`medcorr.benchmark.verifier.verifier_worker`); a failure is a result."""
    from medcorr.benchmark.verifier import verifier_worker

    try:
        return verifier_worker(spec)
    except Exception as error:  # noqa: BLE001 - a broken pipeline or endpoint is a result, not a crash
        return {"status": "error", "note": f"verifier stage failed: {_safe_error(error)}"}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "detector": _detector_worker, "pipeline": _pipeline_worker, "matmul": _matmul_worker,
    "profile": _profile_worker, "verifier": _verifier_worker,
}


def worker_main() -> int:
    """Entry of a measurement subprocess: a JSON spec on stdin, the marked JSON result on stdout."""
    spec = json.loads(sys.stdin.read())
    try:
        from loguru import logger

        logger.disable("PyRuSH")
    except ImportError:  # pragma: no cover
        pass
    result = WORKERS[spec["kind"]](spec)
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(worker_main())
    from medcorr.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
