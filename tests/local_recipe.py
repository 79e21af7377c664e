"""The connector README's local run ("Try it locally"), step by step, against the bundled tansu broker.

Used by ``tests/test_local_recipe.py`` and to write the sample output Bundle from the code (never by hand)::

    python tests/local_recipe.py --write-sample     # medcorr/data/connectors/samples/bundle-r4.json
    python tests/local_recipe.py                    # run it and print the timings

Each step is the command the README shows (``python -m medcorr.stream.admin``, ``medcorr stream``), run as a
subprocess. The consumer-group join delay is the time between the connector's "connected" and "partitions
assigned" log lines.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka_broker import start_broker  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "medcorr" / "data" / "connectors" / "samples"
SAMPLE_INPUT = SAMPLES / "documentreference-r4.json"
SAMPLE_OUTPUT = SAMPLES / "bundle-r4.json"
#: The consumer settings the recipe passes (tansu needs them for a quick group join, see tests/kafka_broker.py).
RECIPE_KAFKA_OPTIONS = ("session_timeout_ms=6000", "heartbeat_interval_ms=1000")
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _stamp(line: str) -> float:
    return datetime.strptime(_STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {result.returncode}: {result.stderr[-3000:]}")
    return result


def run_recipe(work: Path, kafka_options: tuple[str, ...] = RECIPE_KAFKA_OPTIONS) -> dict[str, Any]:
    """Start a broker, create the topics, send the sample, run the connector for one message, read its output.

    Returns ``{"bundle": the output Bundle, "join_delay_s", "stream_wall_s", "stderr": the connector's log}``.
    """
    broker = start_broker(work)
    try:
        bootstrap = ["--bootstrap-servers", broker.bootstrap]
        _run("-m", "medcorr.stream.admin", "create-topics", *bootstrap, "--partitions", "1")
        _run("-m", "medcorr.stream.admin", "send", *bootstrap, str(SAMPLE_INPUT))
        options = [item for option in kafka_options for item in ("--kafka-option", option)]
        started = time.monotonic()
        stream = _run("-m", "medcorr", "stream", *bootstrap, "--max-messages", "1", *options)
        wall = time.monotonic() - started
        lines = stream.stderr.splitlines()
        connected = next(line for line in lines if " medcorr.stream: connected to " in line)
        assigned = next(line for line in lines if " medcorr.stream: partitions assigned: " in line)
        read = _run("-m", "medcorr.stream.admin", "read", *bootstrap, "--max", "1", "--timeout", "20")
        values = [line for line in read.stdout.splitlines() if line.strip()]
        if len(values) != 1:
            raise RuntimeError(f"expected one output record, read {len(values)}")
        return {"bundle": json.loads(values[0]), "join_delay_s": _stamp(assigned) - _stamp(connected),
                "stream_wall_s": wall, "stderr": stream.stderr}
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-sample", action="store_true", help=f"write the output Bundle to {SAMPLE_OUTPUT}")
    parser.add_argument("--kafka-defaults", action="store_true",
                        help="run without the recipe's consumer timeouts (kafka-python defaults)")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        result = run_recipe(Path(work), () if args.kafka_defaults else RECIPE_KAFKA_OPTIONS)
    print(f"join delay {result['join_delay_s']:.1f} s; medcorr stream ran {result['stream_wall_s']:.1f} s")
    if args.write_sample:
        SAMPLE_OUTPUT.write_text(json.dumps(result["bundle"], indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {SAMPLE_OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
