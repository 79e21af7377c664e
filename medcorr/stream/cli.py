"""``medcorr stream``: the Kafka connector subcommand (also ``python -m medcorr.stream``).

Exit codes: 0 stopped cleanly (signal, ``--max-messages``, ``--idle-timeout``), 1 unexpected failure,
2 bad settings, 3 broker unreachable or a record not delivered (nothing of the batches in hand committed),
4 the pipeline raised for too many consecutive notes (model broken; nothing of the batches in hand committed),
130 second interrupt (hard stop, batches in hand not committed).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any, Sequence

from medcorr.fhir import OUTPUT_VALIDATIONS
from medcorr.stream.config import KAFKA_LOG_LEVELS

EPILOG = """\
settings: command line > MEDCORR_* environment > --config TOML > defaults. Kafka client settings
(security_protocol, ssl_cafile, sasl_mechanism, sasl_plain_username ...) go in the TOML [kafka] table,
MEDCORR_KAFKA_<SETTING> variables or --kafka-option; the SASL password only in
MEDCORR_KAFKA_SASL_PLAIN_PASSWORD or sasl_plain_password_file. See connectors/README.md.

exit codes: 0 clean stop, 2 bad settings, 3 broker unreachable / delivery failed (batch not committed),
4 pipeline broken (batch not committed)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``medcorr stream`` (every default None: unset options do not override env/TOML)."""
    kafka = parser.add_argument_group("Kafka")
    kafka.add_argument("--bootstrap-servers", metavar="HOST:PORT[,HOST:PORT]", help="Kafka bootstrap servers")
    kafka.add_argument("--input-topic", metavar="TOPIC", help="topic of FHIR DocumentReferences (default: notes)")
    kafka.add_argument("--output-topic", metavar="TOPIC", help="topic for result Bundles (default: medcorr.findings)")
    kafka.add_argument("--dead-letter-topic", metavar="TOPIC", help="dead-letter topic (default: medcorr.dlq)")
    kafka.add_argument("--group-id", metavar="ID", help="consumer group (default: medcorr)")
    kafka.add_argument("--client-id", metavar="ID", help="Kafka client id")
    kafka.add_argument("--auto-offset-reset", choices=("earliest", "latest"),
                       help="where a new group starts (default: earliest)")
    kafka.add_argument("--kafka-option", action="append", metavar="KEY=VALUE", dest="kafka_option",
                       help="kafka-python setting for both clients, repeatable (no secrets here)")
    kafka.add_argument("--broker-timeout", type=float, metavar="SECONDS",
                       help="give up (exit 3) after the broker is unreachable this long (default: 120)")

    run = parser.add_argument_group("processing")
    run.add_argument("--config", metavar="stream.toml", help="TOML settings file (or MEDCORR_CONFIG)")
    run.add_argument("--fhir-version", choices=("R4", "R5"), type=str.upper, help="FHIR version (default: R4)")
    run.add_argument("--output-validation", choices=OUTPUT_VALIDATIONS,
                     help="validate each output Bundle against medcorr's output profile (default, ~0.01 ms) or "
                          "with the full fhir.resources classes (~1 ms per note)")
    run.add_argument("--pipeline-config", metavar="CFG", help="spaCy .cfg or pipeline directory (default: shipped)")
    run.add_argument("--code", action="append", metavar="PATH",
                     help="Python file to import first (custom components), repeatable")
    run.add_argument("--batch-size", type=int, metavar="N", help="messages per poll/commit (default: 32)")
    run.add_argument("--max-note-bytes", type=int, metavar="BYTES", help="note size limit (default: 1 MiB)")
    run.add_argument("--max-messages", type=int, metavar="N", help="stop after N input messages")
    run.add_argument("--idle-timeout", type=float, metavar="SECONDS",
                     help="stop after SECONDS without input (broker reachable)")

    ops = parser.add_argument_group("operations")
    ops.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus /metrics on PORT")
    ops.add_argument("--metrics-host", metavar="ADDR", help="metrics bind address (default: 0.0.0.0)")
    ops.add_argument("--log-level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                     help="log level (default: INFO)")
    ops.add_argument("--kafka-log-level", type=str.upper, choices=KAFKA_LOG_LEVELS,
                     help="level of kafka-python's own log lines (default: CRITICAL; medcorr itself reports an "
                          "unreachable broker, with one warning and one error line)")
    ops.add_argument("--print-config", action="store_true",
                     help="print the effective settings (secrets redacted) as JSON and exit")


def register(subparsers: Any) -> None:
    """Add the ``stream`` command to the ``medcorr`` CLI."""
    parser = subparsers.add_parser(
        "stream",
        help="check FHIR DocumentReferences from Kafka; write DetectedIssue Bundles and dead letters",
        description=(
            "Consume FHIR DocumentReferences (R4/R5 JSON, or Bundles of them) from Kafka, check each note, and "
            "write one FHIR Bundle of DetectedIssues per note to the output topic (an empty Bundle with a "
            "verdict extension when clean) and every unusable message to the dead-letter topic. "
            "At-least-once: a batch's offsets are committed only after every record of it and of every earlier "
            "batch is acknowledged."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run_command)


_CLI_FIELDS = (
    "bootstrap_servers", "input_topic", "output_topic", "dead_letter_topic", "group_id", "client_id",
    "auto_offset_reset", "broker_timeout", "fhir_version", "output_validation", "pipeline_config", "code", "batch_size",
    "max_note_bytes", "max_messages", "idle_timeout", "metrics_port", "metrics_host", "log_level",
    "kafka_log_level",
)


def configure_logging(level: str, kafka_level: str = "CRITICAL") -> None:
    """stderr logging at ``level`` for medcorr, at ``kafka_level`` for kafka-python (logger ``kafka``).

    ``kafka_level`` is one of :data:`~medcorr.stream.config.KAFKA_LOG_LEVELS`; ``OFF`` silences the library,
    and it is never below INFO (kafka-python's DEBUG prints request payloads, i.e. note text).
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    numeric = getattr(logging, level.upper(), logging.INFO)
    root.setLevel(numeric)
    kafka_level = kafka_level.upper()
    kafka_numeric = logging.CRITICAL + 1 if kafka_level == "OFF" else getattr(logging, kafka_level, logging.CRITICAL)
    logging.getLogger("kafka").setLevel(max(kafka_numeric, logging.INFO))
    spacy_logger = logging.getLogger("spacy")
    spacy_logger.propagate = False  # spaCy has its own handler: avoid duplicate lines
    spacy_logger.setLevel(max(numeric, logging.WARNING))  # not its "Created vocabulary" lines of a .cfg build


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``medcorr stream``: load settings and pipeline, serve metrics, run the loop."""
    import json

    from medcorr.stream.config import ConfigError, load_config, parse_kafka_options

    try:
        cli = {name: getattr(args, name, None) for name in _CLI_FIELDS}
        cli["kafka"] = parse_kafka_options(getattr(args, "kafka_option", None))
        config = load_config(cli, config_path=getattr(args, "config", None))
    except ConfigError as error:
        print(f"medcorr stream: error: {error}", file=sys.stderr)
        return 2
    if getattr(args, "print_config", False):
        print(json.dumps(config.redacted(), indent=2, sort_keys=True))
        return 0
    configure_logging(config.log_level, config.kafka_log_level)
    return run_stream(config)


def load_nlp(config: Any) -> Any:
    """Import ``config.code`` files, then build the pipeline with :func:`medcorr.pipeline.build_pipeline`."""
    from pathlib import Path

    from spacy.util import import_file

    for index, path in enumerate(config.code):
        if not Path(path).is_file():
            raise FileNotFoundError(f"--code file not found: {path}")
        import_file(f"medcorr_stream_code_{index}", path)
    from medcorr.pipeline import build_pipeline

    return build_pipeline(config.pipeline_config, overrides=config.pipeline_overrides or None)


def run_stream(config: Any, nlp: Any = None, install_signals: bool = True) -> int:
    """Run the connector with ``config`` (and ``nlp``, built from the config when None)."""
    from medcorr.stream.consumer import EXIT_FAILURE, StreamProcessor
    from medcorr.stream.metrics import StreamMetrics, start_metrics_server

    log = logging.getLogger("medcorr.stream")
    if nlp is None:
        try:
            nlp = load_nlp(config)
        except Exception as error:  # noqa: BLE001 (report one line, exit 1)
            log.error("cannot build the pipeline: %s: %s", type(error).__name__, error)
            return EXIT_FAILURE
    metrics = StreamMetrics()
    server = None
    if config.metrics_port is not None:
        try:
            server = start_metrics_server(metrics, config.metrics_host, config.metrics_port)
        except OSError as error:
            log.error("cannot serve metrics on %s:%s: %s", config.metrics_host, config.metrics_port, error.strerror)
            return 2
    processor = StreamProcessor(config, nlp, metrics=metrics)
    previous: dict[int, Any] = {}
    if install_signals:
        def handle(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if processor.stopping:
                raise KeyboardInterrupt(name)
            log.info("%s received: finishing the batches in hand, then committing and exiting", name)
            processor.stop(name)

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handle)
    try:
        return processor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.shutdown()
            server.server_close()


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the stream options (for ``python -m medcorr.stream``)."""
    parser = argparse.ArgumentParser(
        prog="python -m medcorr.stream", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="medcorr Kafka connector (same as 'medcorr stream').",
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medcorr.stream`` entry point."""
    from medcorr.cli import stdout_closed

    args = build_parser().parse_args(argv)
    try:
        code = run_command(args)
        sys.stdout.flush()  # a closed pipe (``--print-config | head -1``) shows here
        return code
    except BrokenPipeError:
        return stdout_closed()
    except KeyboardInterrupt:
        return 130
