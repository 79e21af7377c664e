"""Throughput of ``medcorr.spark.check_notes`` on a local Spark against ``nlp.pipe`` on the same cores.

    python tests/spark_bench.py                       # the 574 shared MEDEC notes, local[2], 3 rounds
    python tests/spark_bench.py --rounds 5 --partitions 4 --json

(1) ``nlp.pipe``: the default pipeline built in this process (``num_threads`` 0: the detector uses every
core), the result dict of every note made (``Verdict.to_dict``), like the Spark rows;
(2) Spark: ``check_notes`` over the same notes (a cached DataFrame of ``--partitions`` partitions) on
``local[N]``, written to the ``noop`` sink, so every row is computed and nothing is stored. Each executor
Python worker runs the pipeline with one ONNX thread (``spark.task.cpus``).

Both are warm: one untimed pass each first (which builds the workers' pipelines), then ``--rounds``
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes-csv", default=str(DEFAULT_CSV), help="a MEDEC CSV (default: the shared 574 notes)")
    parser.add_argument("--cores", type=int, default=2, help="local[N] (default 2)")
    parser.add_argument("--partitions", type=int, default=0, help="partitions of the notes (default: --cores)")
    parser.add_argument("--batch-size", type=int, default=16, help="nlp.pipe batch, both sides (default 16)")
    parser.add_argument("--num-threads", type=int, default=None,
                        help="ONNX threads per executor Python worker (default: check_notes' spark.task.cpus, 1)")
    parser.add_argument("--rounds", type=int, default=3)
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

    nlp = build_pipeline()

    def run_pipe() -> float:
        started = time.perf_counter()
        rows = [verdict_of(doc).to_dict() for doc in nlp.pipe(texts, batch_size=args.batch_size)]
        elapsed = time.perf_counter() - started
        assert len(rows) == len(texts)
        return elapsed

    def run_spark() -> float:
        started = time.perf_counter()
        check_notes(df, batch_size=args.batch_size, num_threads=args.num_threads).write.format("noop").mode("overwrite").save()
        return time.perf_counter() - started

    warm_pipe, warm_spark = run_pipe(), run_spark()
    print(f"warm-up: nlp.pipe {len(texts) / warm_pipe:.1f} notes/s, Spark {len(texts) / warm_spark:.1f} notes/s "
          f"(includes the workers' pipeline builds)", file=sys.stderr)
    rounds = []
    for index in range(args.rounds):
        before = load()
        pipe_s = run_pipe()
        middle = load()
        spark_s = run_spark()
        result = {"round": index + 1, "pipe_notes_per_s": len(texts) / pipe_s, "spark_notes_per_s": len(texts) / spark_s,
                  "ratio": pipe_s / spark_s, "load_before_pipe": before, "load_before_spark": middle}
        rounds.append(result)
        print(f"round {index + 1}: nlp.pipe {result['pipe_notes_per_s']:.1f} notes/s (load {before}), "
              f"Spark {result['spark_notes_per_s']:.1f} notes/s (load {middle}), ratio {result['ratio']:.3f}",
              file=sys.stderr)
    summary = {
        "notes": len(texts), "cores": args.cores, "partitions": partitions, "batch_size": args.batch_size,
        "worker_num_threads": args.num_threads,
        "median_pipe_notes_per_s": statistics.median(r["pipe_notes_per_s"] for r in rounds),
        "median_spark_notes_per_s": statistics.median(r["spark_notes_per_s"] for r in rounds),
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "rounds": rounds,
    }
    summary["spark_notes_per_s_per_core"] = summary["median_spark_notes_per_s"] / args.cores
    print(f"median: nlp.pipe {summary['median_pipe_notes_per_s']:.1f} notes/s, Spark "
          f"{summary['median_spark_notes_per_s']:.1f} notes/s ({summary['spark_notes_per_s_per_core']:.1f} per core), "
          f"ratio {summary['median_ratio']:.3f}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
