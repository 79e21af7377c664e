"""The verifier stage of ``medcorr bench`` against the local llama.cpp test server (a thin wrapper).

The measurement itself is ``medcorr bench --config CFG --verifier-only`` (:mod:`medcorr.benchmark.verifier`):
``nlp.pipe`` with the verifier against a plain concurrent client sending the same request bodies, per
``max_concurrency``, with calls and tokens per note and a cached re-run. This script only supplies the server:
it starts ``python -m llama_cpp.server`` with the SmolLM2-135M GGUF (tests/llm_server.py), which answers one
request at a time, or with ``--llama-server BIN`` llama.cpp's own server with ``--parallel`` slots decoded
together (``bash tests/build_llama_server.sh`` builds it), unless ``--base-url`` names a running one; it
points the shipped ``pipelines/medcorr_verifier_llamacpp.cfg`` at it with ``--set`` overrides, and passes
every other argument on to the bench. The 135M model's answers measure mechanics, not medicine. Usage::

    python tests/verifier_throughput.py --notes ../shared/medec/MEDEC-MS-...csv --limit 24 \\
        --verifier-concurrency 1 2 4 --repeat 2 --examples 1 --max-tokens 96 --json
    python tests/verifier_throughput.py --llama-server build/llama-server/bin/llama-server --parallel 4 \\
        --notes ../shared/medec/MEDEC-MS-...csv --limit 24 --verifier-concurrency 1 2 4 --repeat 3
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

VERIFIER = "components.medcorr.verifier"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", help="a running OpenAI-compatible server (default: start llama.cpp here)")
    parser.add_argument("--llama-server", type=Path,
                        help="start this llama.cpp llama-server binary instead of llama_cpp.server")
    parser.add_argument("--parallel", type=int, default=4, help="slots of --llama-server (default: 4)")
    parser.add_argument("--model", default="smollm2", help="the model name the server expects")
    parser.add_argument("--config", help="the pipeline .cfg (default: the shipped medcorr_verifier_llamacpp.cfg)")
    parser.add_argument("--examples", type=int, default=1, help="retrieved examples per prompt")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request attempt")
    args, bench_args = parser.parse_known_args(argv)

    from medcorr.cli import main as medcorr_main

    config = args.config or str(resources.files("medcorr") / "data" / "pipelines" / "medcorr_verifier_llamacpp.cfg")
    process = None
    base_url = args.base_url
    if base_url is None:
        from llm_server import find_gguf, start_llama_server, start_native_server, stop

        gguf = find_gguf()
        if gguf is None:
            raise SystemExit("no SmolLM2 GGUF installed: run bash .ci/llm.sh")
        log = Path(tempfile.mkdtemp(prefix="medcorr-llama-")) / "server.log"
        if args.llama_server is not None:
            process, server = start_native_server(args.llama_server, gguf, log, args.parallel)
        else:
            process, server = start_llama_server(gguf, log)
        base_url, args.model = server.base_url, server.model
    try:
        settings = {"base_url": base_url, "model": args.model, "examples": args.examples,
                    "max_tokens": args.max_tokens, "timeout": args.timeout}
        overrides = [item for key, value in settings.items() for item in ("--set", f"{VERIFIER}.{key}={value}")]
        return medcorr_main(["bench", "--config", config, "--verifier-only", *overrides, *bench_args])
    finally:
        if process is not None:
            stop(process)


if __name__ == "__main__":
    raise SystemExit(main())
