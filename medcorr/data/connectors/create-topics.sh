#!/usr/bin/env bash
# Create the medcorr stream topics (input, output, dead-letter) if they do not exist yet.
#
#   connectors/create-topics.sh --config connectors/stream.toml --partitions 6 --replication-factor 3
#   connectors/create-topics.sh --bootstrap-servers localhost:9092 --partitions 3
#
# Same settings sources as `medcorr stream` (TOML, MEDCORR_* env, flags), so TLS/SASL settings apply.
# Existing topics are left untouched; re-running is safe. Extra topic settings:
#   --topic-config dlq:retention.ms=-1 --topic-config output:min.insync.replicas=2
#
# Equivalent with Kafka's own tools:
#   kafka-topics.sh --bootstrap-server HOST:9092 --create --if-not-exists --topic notes --partitions 6 --replication-factor 3
#   kafka-topics.sh --bootstrap-server HOST:9092 --create --if-not-exists --topic medcorr.findings --partitions 6 --replication-factor 3
#   kafka-topics.sh --bootstrap-server HOST:9092 --create --if-not-exists --topic medcorr.dlq --partitions 6 \
#       --replication-factor 3 --config retention.ms=2592000000
set -euo pipefail
PYTHON="${PYTHON:-python3}"
exec "$PYTHON" -m medcorr.stream.admin create-topics "$@"
