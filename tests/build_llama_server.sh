#!/usr/bin/env bash
# Build llama.cpp's own OpenAI-compatible server, llama-server (parallel slots, continuous batching), for
# the verifier throughput measurement (tests/verifier_throughput.py --llama-server). Not needed by the
# tests. The source is the llama.cpp tree vendored in the llama-cpp-python sdist, the one llama.cpp source
# a package registry serves; the build is portable (GGML_NATIVE=OFF, see .ci/llm.sh) and takes about
# 5 minutes on 2 cores.
# Usage: bash tests/build_llama_server.sh [BUILD_DIR]   (default build/llama-server; prints the binary's path)
# Env: PYTHON (default: python), LLAMA_CPP_PYTHON_VERSION (default: 0.3.36).
set -euo pipefail

out="${1:-build/llama-server}"
py="${PYTHON:-python}"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$py" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: -d "$work" \
    "llama-cpp-python==${version}"
tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
source_dir="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
cmake -S "$source_dir" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF >/dev/null
cmake --build "$out" --target llama-server -j"$(nproc)" >/dev/null
echo "$out/bin/llama-server"
