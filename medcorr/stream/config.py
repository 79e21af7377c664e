"""Settings of ``medcorr stream``: defaults < TOML file < ``MEDCORR_*`` environment < command line.

Top-level TOML keys and ``MEDCORR_<FIELD>`` variables name :class:`StreamConfig` fields
(``bootstrap_servers`` / ``MEDCORR_BOOTSTRAP_SERVERS``). Kafka client settings pass through to kafka-python:
the TOML table ``[kafka]`` (both clients), ``[kafka.consumer]`` and ``[kafka.producer]`` (one client),
``MEDCORR_KAFKA_<SETTING>`` variables and ``--kafka-option SETTING=VALUE``. Secrets
(``sasl_plain_password``, ``ssl_password``) are accepted only from the environment
(``MEDCORR_KAFKA_SASL_PLAIN_PASSWORD``) or from a file (``sasl_plain_password_file``, for a mounted
Kubernetes secret), never from the command line or the TOML file, and never logged.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from medcorr.fhir import DEFAULT_MAX_NOTE_BYTES, FHIR_VERSIONS, OUTPUT_VALIDATIONS

ENV_PREFIX = "MEDCORR_"
KAFKA_ENV_PREFIX = "MEDCORR_KAFKA_"
#: Levels accepted for kafka-python's own log lines (``kafka_log_level``); DEBUG is left out on purpose.
KAFKA_LOG_LEVELS: tuple[str, ...] = ("INFO", "WARNING", "ERROR", "CRITICAL", "OFF")

#: kafka-python settings that the connector owns; setting them through ``[kafka]`` is an error.
RESERVED_KAFKA_KEYS = frozenset(
    {
        "bootstrap_servers",
        "group_id",
        "client_id",
        "enable_auto_commit",
        "auto_offset_reset",
        "key_deserializer",
        "value_deserializer",
        "key_serializer",
        "value_serializer",
        "consumer_timeout_ms",
        "kafka_client",
        "selector",
    }
)
#: Secrets: only from the environment or a ``<name>_file``.
SECRET_KAFKA_KEYS = frozenset({"sasl_plain_password", "ssl_password"})
#: Settings that need a Python object (not expressible in TOML / env); use a custom ``--code`` hook instead.
OBJECT_KAFKA_KEYS = frozenset({"ssl_context", "sasl_oauth_token_provider", "metric_reporters", "socket_options",
                               "partitioner", "default_offset_commit_callback", "partition_assignment_strategy"})


class ConfigError(ValueError):
    """An invalid setting; the message names the setting and where it came from."""


@dataclass
class StreamConfig:
    """Effective settings of one ``medcorr stream`` process (see ``connectors/stream.toml``)."""

    bootstrap_servers: str | None = None
    input_topic: str = "notes"
    output_topic: str = "medcorr.findings"
    dead_letter_topic: str = "medcorr.dlq"
    group_id: str = "medcorr"
    client_id: str | None = None
    fhir_version: str = "R4"
    #: How each output Bundle is validated: ``profile`` (medcorr's output profile, about 0.01 ms) or
    #: ``classes`` (the full fhir.resources classes as well, about 1 ms per note).
    output_validation: str = "profile"
    #: Stop after this many input messages (bounded runs for tests and backfills).
    max_messages: int | None = None
    #: Stop (exit 0) after this many seconds without a message while the broker is reachable.
    idle_timeout: float | None = None
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    #: spaCy ``.cfg`` or saved pipeline directory for :func:`medcorr.pipeline.build_pipeline`.
    pipeline_config: str | None = None
    #: Overrides for :func:`medcorr.pipeline.build_pipeline` (``{"components.medcorr.threshold": 0.6}``).
    pipeline_overrides: dict[str, Any] = field(default_factory=dict)
    #: Python file(s) imported before the pipeline is built (custom components), like spaCy's ``--code``.
    code: list[str] = field(default_factory=list)
    #: Messages per poll / commit (also the ``nlp.pipe`` batch size).
    batch_size: int = 32
    #: Seconds one poll waits for messages (bounds the reaction time to SIGTERM).
    poll_timeout: float = 0.5
    max_note_bytes: int = DEFAULT_MAX_NOTE_BYTES
    #: Seconds the broker may be unreachable (at start or during the run) before exiting non-zero.
    broker_timeout: float = 120.0
    auto_offset_reset: str = "earliest"
    #: Consecutive pipeline exceptions after which the process stops (exit 4) instead of dead-lettering
    #: everything (a broken model is not a bad note). 0 disables the breaker.
    max_consecutive_pipeline_errors: int = 20
    log_level: str = "INFO"
    #: Level of kafka-python's own log lines (logger ``kafka``): ``INFO``, ``WARNING``, ``ERROR``, ``CRITICAL``
    #: or ``OFF``. By default only its CRITICAL lines pass: with the broker down it logs several lines per
    #: connection attempt, while medcorr reports the outage itself. Never DEBUG (that prints request payloads).
    kafka_log_level: str = "CRITICAL"
    #: kafka-python settings for both clients (security: ``security_protocol``, ``ssl_cafile``, ``sasl_*``).
    kafka: dict[str, Any] = field(default_factory=dict)
    consumer: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "StreamConfig":
        """Check values; returns ``self``. Raises :class:`ConfigError`."""
        if not self.bootstrap_servers:
            raise ConfigError(
                "bootstrap_servers is required (--bootstrap-servers, MEDCORR_BOOTSTRAP_SERVERS or the TOML file)"
            )
        for name in ("input_topic", "output_topic", "dead_letter_topic", "group_id"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")
        if len({self.input_topic, self.output_topic, self.dead_letter_topic}) != 3:
            raise ConfigError("input_topic, output_topic and dead_letter_topic must be three different topics")
        version = str(self.fhir_version).upper()
        if version in ("R4B",):
            version = "R4"
        if version not in FHIR_VERSIONS:
            raise ConfigError(f"fhir_version must be R4 or R5, not {self.fhir_version!r}")
        self.fhir_version = version
        if self.output_validation not in OUTPUT_VALIDATIONS:
            raise ConfigError(
                f"output_validation must be one of {', '.join(OUTPUT_VALIDATIONS)}, not {self.output_validation!r}"
            )
        positive = ("batch_size", "max_note_bytes")
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.max_messages is not None and self.max_messages <= 0:
            raise ConfigError("max_messages must be positive")
        for name in ("idle_timeout", "broker_timeout", "poll_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError("metrics_port must be 0..65535")
        if self.auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError("auto_offset_reset must be 'earliest' or 'latest'")
        self.kafka_log_level = str(self.kafka_log_level).upper()
        if self.kafka_log_level not in KAFKA_LOG_LEVELS:
            raise ConfigError(f"kafka_log_level must be one of {', '.join(KAFKA_LOG_LEVELS)}, "
                              f"not {self.kafka_log_level!r}")
        if self.max_consecutive_pipeline_errors < 0:
            raise ConfigError("max_consecutive_pipeline_errors must be >= 0")
        acks = {**self.kafka, **self.producer}.get("acks")
        if acks is not None and str(acks) == "0":
            raise ConfigError("acks=0 cannot guarantee at-least-once delivery; use 'all' (default) or 1")
        return self

    def consumer_settings(self) -> dict[str, Any]:
        """kafka-python ``KafkaConsumer`` keyword arguments (without the connector-owned ones)."""
        from kafka import KafkaConsumer

        shared = {k: v for k, v in self.kafka.items() if k in KafkaConsumer.DEFAULT_CONFIG}
        return {**shared, **self.consumer}

    def producer_settings(self) -> dict[str, Any]:
        """kafka-python ``KafkaProducer`` keyword arguments (without the connector-owned ones)."""
        from kafka import KafkaProducer

        shared = {k: v for k, v in self.kafka.items() if k in KafkaProducer.DEFAULT_CONFIG}
        return {**shared, **self.producer}

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets replaced by ``***`` (safe to log or print)."""
        data = dataclasses.asdict(self)
        for section in ("kafka", "consumer", "producer"):
            data[section] = {
                key: ("***" if key in SECRET_KAFKA_KEYS or "password" in key else value)
                for key, value in data[section].items()
            }
        return data


_FIELDS = {f.name: f for f in dataclasses.fields(StreamConfig)}
_SECTIONS = ("kafka", "consumer", "producer")
_SCALAR_FIELDS = {name for name in _FIELDS if name not in _SECTIONS + ("pipeline_overrides", "code")}


def _field_type(name: str) -> str:
    """The annotation of a field as a string (``'int | None'``)."""
    return str(_FIELDS[name].type)


def coerce_field(name: str, value: Any, source: str) -> Any:
    """Convert a string (env / CLI) or TOML value to the type of field ``name``."""
    kind = _field_type(name)
    if value is None:
        return None
    try:
        if kind.startswith("int"):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("list"):
            if isinstance(value, str):
                return [item for item in (part.strip() for part in value.split(",")) if item]
            return [str(item) for item in value]
        if kind.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if kind.startswith("str"):
            if isinstance(value, list):  # bootstrap_servers = ["a:9092", "b:9092"]
                return ",".join(str(item) for item in value)
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {name} must be {kind}, got {value!r}") from None
    return value


def coerce_kafka_option(key: str, value: Any, source: str) -> Any:
    """Convert a kafka-python setting from a string (env / CLI) using the type of its kafka-python default."""
    from kafka import KafkaConsumer, KafkaProducer

    key = key.strip().lower().replace("-", "_")
    defaults = {**KafkaProducer.DEFAULT_CONFIG, **KafkaConsumer.DEFAULT_CONFIG}
    if key not in defaults:
        raise ConfigError(f"{source}: unknown kafka-python setting {key!r}")
    if key in RESERVED_KAFKA_KEYS:
        raise ConfigError(f"{source}: {key!r} is set by medcorr stream itself (use the stream option instead)")
    if key in OBJECT_KAFKA_KEYS:
        raise ConfigError(f"{source}: {key!r} needs a Python object and cannot be set here")
    if not isinstance(value, str):
        return value
    default = defaults[key]
    text = value.strip()
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
    if key == "acks":
        return text if text == "all" else int(text)
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{source}: {key} must be an integer, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}") from None
    if key == "api_version" and text:
        return tuple(int(part) for part in text.split("."))
    return text


def _kafka_section(items: Mapping[str, Any], source: str, allow_secrets: bool) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for raw_key, value in items.items():
        key = raw_key.strip().lower().replace("-", "_")
        if key.endswith("_file") and key[: -len("_file")] in SECRET_KAFKA_KEYS:
            secret = key[: -len("_file")]
            try:
                result[secret] = Path(str(value)).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ConfigError(f"{source}: cannot read {key} {value!r}: {error.strerror}") from None
            continue
        if key in SECRET_KAFKA_KEYS and not allow_secrets:
            raise ConfigError(
                f"{source}: {key} is a secret; set MEDCORR_KAFKA_{key.upper()} in the environment "
                f"or {key}_file to a file that holds it"
            )
        result[key] = coerce_kafka_option(key, value, source)
    return result


def from_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (see ``connectors/stream.toml``), as a partial field dict."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    if isinstance(data.get("stream"), dict):  # optional [stream] table
        data = {**{k: v for k, v in data.items() if k != "stream"}, **data["stream"]}
    source = str(path)
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key == "kafka":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [kafka] must be a table")
            nested = {k: v for k, v in value.items() if isinstance(v, dict)}
            for sub in nested:
                if sub not in ("consumer", "producer"):
                    raise ConfigError(f"{source}: unknown table [kafka.{sub}] (use consumer or producer)")
            values["kafka"] = _kafka_section(
                {k: v for k, v in value.items() if not isinstance(v, dict)}, source, allow_secrets=False
            )
            for sub, table in nested.items():
                values[sub] = _kafka_section(table, f"{source} [kafka.{sub}]", allow_secrets=False)
        elif key == "pipeline_overrides":
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [pipeline_overrides] must be a table")
            values[key] = dict(value)
        elif key in _FIELDS and key not in _SECTIONS:
            values[key] = coerce_field(key, value, source)
        else:
            raise ConfigError(f"{source}: unknown setting {raw_key!r}")
    if "pipeline_config" in values and values["pipeline_config"]:
        candidate = Path(values["pipeline_config"])
        if not candidate.is_absolute() and not candidate.exists() and (path.parent / candidate).exists():
            values["pipeline_config"] = str(path.parent / candidate)
    return values


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from ``MEDCORR_<FIELD>`` and ``MEDCORR_KAFKA_<SETTING>`` variables (partial field dict)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    kafka: dict[str, Any] = {}
    for name, value in environ.items():
        if name.startswith(KAFKA_ENV_PREFIX) and name[len(ENV_PREFIX):].lower() not in _SCALAR_FIELDS:
            kafka[name[len(KAFKA_ENV_PREFIX):].lower()] = value
        elif name.startswith(ENV_PREFIX):
            key = name[len(ENV_PREFIX):].lower()
            if key in _SCALAR_FIELDS or key == "code":
                if value == "":
                    continue
                values[key] = coerce_field(key, value, f"environment {name}")
    if kafka:
        values["kafka"] = _kafka_section(kafka, "environment MEDCORR_KAFKA_*", allow_secrets=True)
    return values


def parse_kafka_options(options: list[str] | None) -> dict[str, Any]:
    """``--kafka-option KEY=VALUE`` items to a settings dict (secrets are refused)."""
    result: dict[str, Any] = {}
    for option in options or []:
        if "=" not in option:
            raise ConfigError(f"--kafka-option {option!r}: expected KEY=VALUE")
        key, value = option.split("=", 1)
        result.update(_kafka_section({key: value}, "--kafka-option", allow_secrets=False))
    return result


def load_config(
    cli: Mapping[str, Any] | None = None,
    config_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> StreamConfig:
    """Merge defaults < TOML (``config_path`` or ``MEDCORR_CONFIG``) < environment < ``cli`` and validate.

    ``cli`` holds field values given on the command line (None = not given); its ``kafka`` dict is merged
    key by key over the other sources' ``kafka`` settings.
    """
    environ = os.environ if environ is None else environ
    layers: list[dict[str, Any]] = []
    path = config_path or environ.get("MEDCORR_CONFIG") or None
    if path:
        layers.append(from_toml(path))
    layers.append(from_env(environ))
    layers.append({k: v for k, v in (cli or {}).items() if v is not None and v != {} and v != []})
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if key not in _FIELDS:
                raise ConfigError(f"unknown setting {key!r}")
            if key in _SECTIONS or key == "pipeline_overrides":
                merged[key] = {**merged.get(key, {}), **value}
            else:
                merged[key] = value
    return StreamConfig(**merged).validate()
