"""Throughput of ``medcorr.spark.check_notes`` on a local Spark against ``nlp.pipe`` on the same cores.

    python tests/spark_bench.py                       # the 574 shared MEDEC notes, local[2], 3 rounds
    python tests/spark_bench.py --rounds 5 --partitions 4 --json

(1) ``nlp.pipe``: the default pipeline built in this process (``num_threads`` 0: the detector uses every
core), the result dict of every note made (``Verdict.to_dict``), like the Spark rows;
(2) Spark: ``check_notes`` over the same notes (a cached DataFrame of ``--partitions`` partitions) on
``local[N]``, written to the ``noop`` sink, so every row is computed and nothing is stored. Each executor
Python worker runs the pipeline with one ONNX thread (``spark.task.cpus``).

Throughput on a shared machine moves with the other load, so the CPU seconds each side spends per note
(this process and its descendants: the JVM, Spark's Python daemon and workers) are reported as well; their
ratio does not depend on how much of the cores the other load takes. Both are warm: one untimed pass each first (which builds the workers' pipelines), then ``--rounds``
rounds that alternate the two, so a drift in the machine's speed hits both alike. Reported: notes/s of
each pass, the Spark / nlp.pipe ratio of each round, medians, and the load average around each pass.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CSV = ROOT.parent / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and all its live descendants (the JVM, Spark's Python
    daemon and workers), from /proc; 0.0 where there is no /proc."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes-csv", default=str(DEFAULT_CSV), help="a MEDEC CSV (default: the shared 574 notes)")
    parser.add_argument("--cores", type=int, default=2, help="local[N] (default 2)")
    parser.add_argument("--partitions", type=int, default=0, help="partitions of the notes (default: --cores)")
    parser.add_argument("--batch-size", type=int, default=16, help="nlp.pipe batch, both sides (default 16)")
    parser.add_argument("--num-threads", type=int, default=None,
                        help="ONNX threads per executor Python worker (default: check_notes' spark.task.cpus, 1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verifier-delay", type=float, default=None, metavar="S",
                        help="also configure a verifier: a local scripted endpoint that answers 'no error' after S "
                             "seconds (tests/chat_stub.py), to see what an endpoint's latency does to throughput")
    parser.add_argument("--verifier-concurrency", type=int, default=4,
                        help="the verifier's max_concurrency (requests in flight per worker; default 4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from medcorr.medec.io import read_medec
    from medcorr.pipeline import build_pipeline, verdict_of
    from medcorr.spark import check_notes

    notes = [(record.text_id, record.text) for record in read_medec(args.notes_csv)]
    texts = [text for _, text in notes]
    partitions = args.partitions or args.cores
    print(f"{len(notes)} notes, local[{args.cores}], {partitions} partitions, batch size {args.batch_size}, "
          f"worker threads {args.num_threads if args.num_threads is not None else 'spark.task.cpus'}, "
          f"{os.cpu_count()} CPUs visible, load {load()}", file=sys.stderr)

    spark = (SparkSession.builder.master(f"local[{args.cores}]").appName("medcorr-spark-bench")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(partitions)).getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.createDataFrame(notes, "note_id string, text string").repartition(partitions).cache()
    df.count()

    overrides: dict = {}
    server = None
    if args.verifier_delay is not None:
        sys.path.insert(0, str(ROOT / "tests"))
        from chat_stub import StubServer, answer

        server = StubServer(lambda body, index: (200, answer(False)), delay=args.verifier_delay)
        overrides["verifier"] = {"@medcorr_verifiers": "medcorr.ChatVerifier.v1", "base_url": server.base_url,
                                 "model": "stub", "api_key_env": None, "examples": 0,
                                 "max_concurrency": args.verifier_concurrency}
        print(f"verifier: scripted endpoint, {args.verifier_delay} s per request, max_concurrency "
              f"{args.verifier_concurrency}", file=sys.stderr)
    nlp = build_pipeline(overrides=overrides)

    def run_pipe() -> tuple[float, float]:
        cpu, started = tree_cpu_seconds(), time.perf_counter()
        rows = [verdict_of(doc).to_dict() for doc in nlp.pipe(texts, batch_size=args.batch_size)]
        elapsed = time.perf_counter() - started
        assert len(rows) == len(texts)
        return elapsed, tree_cpu_seconds() - cpu

    def run_spark() -> tuple[float, float]:
        cpu, started = tree_cpu_seconds(), time.perf_counter()
        check_notes(df, overrides=overrides, batch_size=args.batch_size, num_threads=args.num_threads).write.format("noop").mode("overwrite").save()
        return time.perf_counter() - started, tree_cpu_seconds() - cpu

    (warm_pipe, _), (warm_spark, _) = run_pipe(), run_spark()
    print(f"warm-up: nlp.pipe {len(texts) / warm_pipe:.1f} notes/s, Spark {len(texts) / warm_spark:.1f} notes/s "
          f"(includes the workers' pipeline builds)", file=sys.stderr)
    rounds = []
    for index in range(args.rounds):
        before = load()
        pipe_s, pipe_cpu = run_pipe()
        middle = load()
        spark_s, spark_cpu = run_spark()
        result = {"round": index + 1, "pipe_notes_per_s": len(texts) / pipe_s, "spark_notes_per_s": len(texts) / spark_s,
                  "ratio": pipe_s / spark_s, "pipe_cpu_ms_per_note": 1000 * pipe_cpu / len(texts),
                  "spark_cpu_ms_per_note": 1000 * spark_cpu / len(texts), "cpu_ratio": pipe_cpu / spark_cpu,
                  "load_before_pipe": before, "load_before_spark": middle}
        rounds.append(result)
        print(f"round {index + 1}: nlp.pipe {result['pipe_notes_per_s']:.1f} notes/s "
              f"{result['pipe_cpu_ms_per_note']:.1f} CPU ms/note (load {before}), "
              f"Spark {result['spark_notes_per_s']:.1f} notes/s {result['spark_cpu_ms_per_note']:.1f} CPU ms/note "
              f"(load {middle}), ratio {result['ratio']:.3f}, CPU ratio {result['cpu_ratio']:.3f}", file=sys.stderr)
    summary = {
        "notes": len(texts), "cores": args.cores, "partitions": partitions, "batch_size": args.batch_size,
        "worker_num_threads": args.num_threads,
        "median_pipe_notes_per_s": statistics.median(r["pipe_notes_per_s"] for r in rounds),
        "median_spark_notes_per_s": statistics.median(r["spark_notes_per_s"] for r in rounds),
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
        "rounds": rounds,
    }
    summary["spark_notes_per_s_per_core"] = summary["median_spark_notes_per_s"] / args.cores
    print(f"median: nlp.pipe {summary['median_pipe_notes_per_s']:.1f} notes/s, Spark "
          f"{summary['median_spark_notes_per_s']:.1f} notes/s ({summary['spark_notes_per_s_per_core']:.1f} per core), "
          f"ratio {summary['median_ratio']:.3f}; CPU per note nlp.pipe / Spark {summary['median_cpu_ratio']:.3f}",
          file=sys.stderr)
    if server is not None:
        summary["verifier_requests"] = server.calls
        summary["verifier_max_in_flight"] = server.max_in_flight
        print(f"verifier: {server.calls} requests, at most {server.max_in_flight} in flight", file=sys.stderr)
        server.close()
    if args.json:
        print(json.dumps(summary, indent=2))
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
