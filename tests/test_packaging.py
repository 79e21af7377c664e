"""The files the docs point at (pipeline configs, connector files, sample messages) ship in the package, are
in the wheel, keep their repository paths, and ``medcorr init-config`` writes them out."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from medcorr.cli import EXIT_USAGE, main
from medcorr.cli_init import shipped_files

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "medcorr" / "data"
DOCUMENTED = [  # paths the README, the connector README and the .cfg comments use
    "pipelines/medcorr.cfg", "pipelines/medspacy_medcorr.cfg",
    "connectors/stream.toml", "connectors/create-topics.sh", "connectors/systemd/medcorr-stream@.service",
    "connectors/kubernetes/deployment.yaml", "connectors/fhir/CodeSystem-medcorr-error-type.json",
    "connectors/samples/documentreference-r4.json",
]


def test_documented_repository_paths_are_the_package_files():
    shipped = {relative for relative, _ in shipped_files()}
    for relative in DOCUMENTED:
        assert relative in shipped, relative
        assert (ROOT / relative).resolve() == (DATA / relative).resolve(), relative  # one copy, two paths


def test_init_config_writes_every_shipped_file(tmp_path, capsys):
    assert main(["init-config", "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    assert len(written) == len(list(shipped_files()))
    for relative in DOCUMENTED:
        assert (tmp_path / relative).read_bytes() == (DATA / relative).read_bytes(), relative
    assert os.access(tmp_path / "connectors" / "create-topics.sh", os.X_OK)


def test_init_config_keeps_existing_files_unless_forced(tmp_path, capsys):
    target = tmp_path / "connectors" / "stream.toml"
    target.parent.mkdir(parents=True)
    target.write_text("# mine\n", encoding="utf-8")
    assert main(["init-config", "--out", str(tmp_path)]) == EXIT_USAGE
    assert "already exists" in capsys.readouterr().err
    assert target.read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / "pipelines").exists()  # nothing written when refusing
    assert main(["init-config", "--out", str(tmp_path), "--only", "pipelines"]) == 0
    assert (tmp_path / "pipelines" / "medcorr.cfg").is_file() and target.read_text(encoding="utf-8") == "# mine\n"
    assert main(["init-config", "--out", str(tmp_path), "--force"]) == 0
    assert target.read_bytes() == (DATA / "connectors" / "stream.toml").read_bytes()


def test_written_stream_settings_name_only_known_settings(tmp_path):
    import dataclasses
    import tomllib

    from medcorr.stream.config import StreamConfig

    assert main(["init-config", "--out", str(tmp_path), "--only", "connectors"]) == 0
    settings = tomllib.loads((tmp_path / "connectors" / "stream.toml").read_text(encoding="utf-8"))
    fields = {field.name for field in dataclasses.fields(StreamConfig)}
    assert set(settings) - {"kafka", "pipeline_overrides"} <= fields
    assert settings["kafka_log_level"] == "CRITICAL"


@pytest.mark.slow
def test_wheel_contains_what_the_commands_need(tmp_path):
    build = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
             "-w", str(tmp_path)]
    result = subprocess.run(build, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("medcorr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for relative, _ in shipped_files():
        assert f"medcorr/data/{relative}" in names, relative
    for relative in DOCUMENTED:
        assert f"medcorr/data/{relative}" in names, relative
    assert {"medcorr/cli_init.py", "medcorr/benchmark/bench.py", "medcorr/data/lexicon_sources/procedures.tsv",
            "medcorr/data/lexicon_sources/README.md"} <= names
