"""The Dockerfile agrees with the repository, the package and the Kubernetes manifest (no Docker engine needed;
with one on PATH and MEDCORR_TEST_DOCKER=1 the image is also built and its entry point run)."""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
MANIFEST = ROOT / "medcorr" / "data" / "connectors" / "kubernetes" / "deployment.yaml"
IMAGE = "registry.example.org/medcorr:0.1.0"


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/")
               for pattern in dockerignore())


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_copied_sources_exist_and_are_not_ignored():
    copies = [args for keyword, args in instructions() if keyword == "COPY" and not args.startswith("--from")]
    assert copies
    sources = [source for args in copies for source in args.split()[:-1]]
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    # what the wheel build reads: the project file, its readme, the package
    assert {"pyproject.toml", pyproject()["project"]["readme"], "medcorr"} <= set(sources)


def test_base_image_python_satisfies_requires_python():
    images = [args.split()[0] for keyword, args in instructions() if keyword == "FROM"]
    assert images and all(image.startswith("python:") for image in images)
    required = pyproject()["project"]["requires-python"]
    minimum = tuple(int(part) for part in re.match(r">=\s*(\d+)\.(\d+)", required).groups())
    for image in images:
        version = tuple(int(part) for part in re.match(r"python:(\d+)\.(\d+)", image).groups())
        assert version >= minimum, f"{image} is older than requires-python {required}"


def test_entrypoint_is_the_installed_command_and_the_default_command_parses():
    from medcorr.cli import build_parser

    steps = dict(instructions())
    entrypoint = json.loads(steps["ENTRYPOINT"])
    command = json.loads(steps["CMD"])
    assert entrypoint == ["medcorr"] and "medcorr" in pyproject()["project"]["scripts"]
    args = build_parser().parse_args(command)
    assert args.func.__module__ == "medcorr.stream.cli"


def test_kubernetes_manifest_matches_the_image():
    from medcorr.cli import build_parser

    manifest = MANIFEST.read_text(encoding="utf-8")
    assert f"image: {IMAGE}" in manifest
    assert IMAGE.endswith(":" + pyproject()["project"]["version"])
    assert IMAGE in DOCKERFILE.read_text(encoding="utf-8")  # the build command documented there
    container_args = json.loads(re.search(r"^\s*args: (\[.*\])\s*$", manifest, re.M).group(1))
    assert build_parser().parse_args(container_args).config == "/etc/medcorr/stream.toml"
    steps = instructions()
    assert ("EXPOSE", re.search(r"containerPort: (\d+)", manifest).group(1)) in steps
    uid = re.search(r"runAsUser: (\d+)", manifest).group(1)
    assert ("USER", uid) in steps and any(f"--uid {uid}" in args for keyword, args in steps if keyword == "RUN")


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("docker") and os.environ.get("MEDCORR_TEST_DOCKER") == "1"),
                    reason="needs a Docker engine and MEDCORR_TEST_DOCKER=1")
def test_image_builds_and_runs(tmp_path):
    subprocess.run(["docker", "build", "-t", "medcorr-test:latest", str(ROOT)], check=True, timeout=1800)
    result = subprocess.run(["docker", "run", "--rm", "medcorr-test:latest", "stream", "--help"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "--bootstrap-servers" in result.stdout
