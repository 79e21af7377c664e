"""The machine's matrix-multiply rate with onnxruntime, the yardstick of ``medcorr bench``'s matmul fraction.

Two ways to read it:

* :func:`best_rate`: a large one-node matmul, timed for a while (the bench's ``matmul`` measurement, once per
  round);
* :class:`RateSampler`: the same product sampled *between the chunks of a timed detector pass*, in a child
  process, so that a pass's fraction compares its useful FLOPs with what the matmul could do in the same
  seconds.

Why both: on the 2-vCPU VM this was built on, the two-thread int8 rate read anywhere from 705 to 1,804
GFLOP/s in samples a few seconds apart (one thread: 560-980), while the detector's notes/s moved far less.
A rate read minutes before or after a pass is then mostly a reading of the VM's mood at that moment.
Each sample is the best of :data:`SAMPLE_RUNS` back-to-back runs: the first runs after other work read up
to 15% slower than the later ones, and the best run keeps that ramp out of the yardstick.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

#: (M, K, N) of the rate probes: a large square-ish product and the MiniLM FFN shape.
SHAPES: tuple[tuple[int, int, int], ...] = ((4096, 1024, 1024), (4096, 384, 1536))
SAMPLE_SHAPE = SHAPES[0]
SAMPLE_RUNS = 8
MIN_SECONDS = 0.3  # best_rate: per shape and dtype at least 5 runs and this long; the median run counts


def matmul_graph(m: int, k: int, n: int, int8: bool) -> bytes:
    """A one-node ONNX graph ``A[m,k] @ W[k,n]`` (int8 weights: ``DynamicQuantizeMatMul``)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inputs = [helper.make_tensor_value_info("A", TensorProto.FLOAT, [m, k])]
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [m, n])]
    if int8:
        weights = [numpy_helper.from_array(rng.integers(-127, 128, (k, n), dtype=np.int8), "W"),
                   numpy_helper.from_array(np.full(n, 0.01, dtype=np.float32), "scale"),
                   numpy_helper.from_array(np.zeros(n, dtype=np.int8), "zero")]
        node = helper.make_node("DynamicQuantizeMatMul", ["A", "W", "scale", "zero"], ["Y"], domain="com.microsoft")
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    else:
        weights = [numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "W")]
        node = helper.make_node("MatMul", ["A", "W"], ["Y"])
        opsets = [helper.make_opsetid("", 17)]
    graph = helper.make_graph([node], "matmul", inputs, outputs, initializer=weights)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


class _Probe:
    """One matmul session and its input, with the detector's session options."""

    def __init__(self, shape: tuple[int, int, int], int8: bool, threads: int) -> None:
        import numpy as np
        import onnxruntime as ort

        from medcorr.ort_cache import session_options

        m, k, n = shape
        self.flops = 2 * m * k * n
        self.session = ort.InferenceSession(matmul_graph(m, k, n, int8), session_options(ort, threads),
                                            providers=["CPUExecutionProvider"])
        self.feed = {"A": np.random.default_rng(1).standard_normal((m, k), dtype=np.float32)}
        self.session.run(None, self.feed)

    def run_seconds(self) -> float:
        start = time.perf_counter()
        self.session.run(None, self.feed)
        return time.perf_counter() - start


def best_rate(threads: int) -> dict[str, Any]:
    """GFLOP/s of int8 and fp32 over :data:`SHAPES` (per shape the median run; per dtype the best shape)."""
    result: dict[str, Any] = {"status": "ok", "shapes": [list(s) for s in SHAPES], "per_shape": {}}
    for int8 in (True, False):
        best = 0.0
        for shape in SHAPES:
            probe = _Probe(shape, int8, threads)
            runs: list[float] = []
            started = time.perf_counter()
            while len(runs) < 5 or (time.perf_counter() - started < MIN_SECONDS and len(runs) < 50):
                runs.append(probe.run_seconds())
            rate = probe.flops / statistics.median(runs) / 1e9
            result["per_shape"][f"{'int8' if int8 else 'fp32'} {'x'.join(map(str, shape))}"] = rate
            best = max(best, rate)
        result["int8_gflops_per_s" if int8 else "fp32_gflops_per_s"] = best
    return result


class SamplerUnavailable(RuntimeError):
    """The sampler's child process could not start (no ``onnx`` package, or it failed)."""


class RateSampler:
    """The matmul rate on demand, from a child process (so the measured process's peak RSS stays its own).

    ``sample()`` runs :data:`SAMPLE_RUNS` products of :data:`SAMPLE_SHAPE` with ``threads`` threads and returns
    the best run's GFLOP/s. The caller is idle meanwhile; the child's threads sleep between samples
    (``allow_spinning=0``). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, int8: bool, threads: int) -> None:
        self.int8, self.threads = int8, threads
        self._process = subprocess.Popen(
            [sys.executable, "-m", "medcorr.benchmark.matmul_rate"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, bufsize=1)
        try:
            reply = self._ask(json.dumps({"int8": int8, "threads": threads}))
            if reply.get("status") != "ok":
                raise SamplerUnavailable(reply.get("note", "the rate sampler did not start"))
        except SamplerUnavailable:
            self.close()
            raise

    def _ask(self, line: str) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        except (BrokenPipeError, OSError) as error:
            raise SamplerUnavailable(f"the rate sampler stopped: {error}") from None
        if not answer:
            raise SamplerUnavailable(f"the rate sampler exited with code {self._process.wait()}")
        return json.loads(answer)

    def sample(self) -> float:
        """GFLOP/s now: the best of :data:`SAMPLE_RUNS` back-to-back runs."""
        return float(self._ask("sample")["gflops_per_s"])

    def close(self) -> None:
        """End the child (it exits when its input closes) and close both pipes, also after a failed start."""
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except BrokenPipeError:  # a child that already exited; the pipe is closed all the same
                pass
        if self._process.poll() is None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung child
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> "RateSampler":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def sampler_main() -> int:
    """The sampler's child process: a JSON settings line, then one JSON reply per ``sample`` line."""
    settings = json.loads(sys.stdin.readline())
    try:
        probe = _Probe(SAMPLE_SHAPE, bool(settings["int8"]), int(settings["threads"]))
    except ImportError as error:
        print(json.dumps({"status": "error", "note": f"no matmul rate samples: {error.name} is not installed"}),
              flush=True)
        return 0
    print(json.dumps({"status": "ok"}), flush=True)
    for line in sys.stdin:
        if line.strip() != "sample":
            print(json.dumps({"status": "error", "note": "unknown request"}), flush=True)
            continue
        fastest = min(probe.run_seconds() for _ in range(SAMPLE_RUNS))
        print(json.dumps({"gflops_per_s": probe.flops / fastest / 1e9}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(sampler_main())
