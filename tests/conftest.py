"""Shared pytest fixtures."""
from __future__ import annotations

# --- llm: a real OpenAI-compatible server (llama.cpp + SmolLM2-135M), see tests/llm_server.py ---
try:
    from tests.llm_server import llm_server  # noqa: F401
except ImportError:  # tests/ on sys.path (rootdir-relative conftest import) rather than the repo root
    from llm_server import llm_server  # type: ignore[no-redef]  # noqa: F401
