# medcorr as a container image: the `medcorr` command, run as the Kafka connector (`medcorr stream`) by
# connectors/kubernetes/deployment.yaml. Build from a checkout (needs network for the Python dependencies):
#
#   docker build -t registry.example.org/medcorr:0.1.0 .
#   docker run --rm registry.example.org/medcorr:0.1.0 stream --help
#   docker run --rm --network host -e MEDCORR_BOOTSTRAP_SERVERS=127.0.0.1:9092 registry.example.org/medcorr:0.1.0
#
# Settings come as in any install: MEDCORR_* variables, a mounted TOML (`stream --config /etc/medcorr/stream.toml`)
# or flags. The image holds the shipped model and lexicon; nothing is downloaded at run time.
# tests/test_dockerfile.py checks this file against the repository and the Kubernetes manifest.

# Stage 1: a wheel of this checkout (package data inside: model, lexicon, pipelines, connector files).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY medcorr ./medcorr
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the wheel and its runtime dependencies, no build tools, a non-root user.
FROM python:3.11-slim
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/medcorr-*.whl \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --home-dir /tmp medcorr
USER 10001
# HOME on /tmp: the onnxruntime session cache goes there (an emptyDir with a read-only root filesystem)
ENV HOME=/tmp PYTHONUNBUFFERED=1
EXPOSE 9464
ENTRYPOINT ["medcorr"]
CMD ["stream"]
