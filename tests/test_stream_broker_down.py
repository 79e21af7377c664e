"""With the broker down, ``medcorr stream`` says so itself, in few lines; kafka-python's noise stays at the
level the operator chose (``--kafka-log-level``, default CRITICAL)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from kafka_broker import free_port  # noqa: E402

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
LINE = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): ")


def stream_against_closed_port(*options: str) -> tuple[int, list[tuple[str, str]], list[str]]:
    """Run the connector (test pipeline) against a port nobody listens on; (exit code, (level, logger)
    of every log line, all stderr lines)."""
    command = [sys.executable, "-m", "medcorr", "stream", "--bootstrap-servers", f"127.0.0.1:{free_port()}",
               "--broker-timeout", "4", "--code", str(TESTS / "stream_fake_pipeline.py"),
               "--pipeline-config", str(TESTS / "data" / "stream_fake.cfg"), *options]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    lines = result.stderr.splitlines()
    parsed = [match.groups() for match in map(LINE.match, lines) if match]
    return result.returncode, parsed, lines


@pytest.mark.slow
def test_broker_down_gives_one_error_line_and_no_library_noise():
    code, parsed, lines = stream_against_closed_port()
    assert code == 3
    assert len(parsed) == len(lines), lines  # nothing but log lines
    assert not [line for line in lines if " kafka." in line], lines
    errors = [line for line in lines if " ERROR " in line]
    assert len(errors) == 1 and "unreachable" in errors[0] and "giving up" in errors[0], lines
    warnings = [line for line in lines if " WARNING " in line]
    assert len(warnings) == 1 and "not reachable" in warnings[0], lines
    assert len(lines) <= 4, lines  # starting, one warning, the error, the final summary


@pytest.mark.slow
def test_kafka_log_level_lets_the_library_speak_when_asked():
    code, parsed, lines = stream_against_closed_port("--kafka-log-level", "ERROR", "--log-level", "ERROR")
    assert code == 3
    kafka_levels = {level for level, name in parsed if name.startswith("kafka")}
    assert kafka_levels == {"ERROR"}, lines
    assert [name for level, name in parsed if not name.startswith("kafka")] == ["medcorr.stream"], lines


def test_kafka_log_level_from_environment_and_toml(tmp_path):
    from medcorr.stream.config import ConfigError, load_config

    env = {"MEDCORR_KAFKA_LOG_LEVEL": "warning", "MEDCORR_BOOTSTRAP_SERVERS": "localhost:9092"}
    assert load_config({}, environ=env).kafka_log_level == "WARNING"
    assert load_config({}, environ=env).kafka == {}  # a medcorr setting, not a kafka-python one
    toml = tmp_path / "stream.toml"
    toml.write_text('bootstrap_servers = "localhost:9092"\nkafka_log_level = "OFF"\n', encoding="utf-8")
    assert load_config({}, config_path=str(toml), environ={}).kafka_log_level == "OFF"
    assert load_config({}, config_path=str(toml), environ={}).redacted()["kafka_log_level"] == "OFF"
    with pytest.raises(ConfigError, match="kafka_log_level"):
        load_config({"kafka_log_level": "DEBUG"}, config_path=str(toml), environ={})
