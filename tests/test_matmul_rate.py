"""The matmul-rate probes of ``medcorr bench``: the one-off best rate and the sampler between detector chunks."""
import subprocess

import pytest

from medcorr.benchmark import matmul_rate
from medcorr.benchmark.matmul_rate import RateSampler, SamplerUnavailable

pytest.importorskip("onnx")


def test_sampler_answers_each_sample_and_its_child_exits_on_close():
    with RateSampler(int8=True, threads=1) as sampler:
        rates = [sampler.sample() for _ in range(3)]
        process = sampler._process
    assert all(0 < rate < 1e6 for rate in rates)  # GFLOP/s of one thread: positive and physical
    assert process.poll() == 0


def test_fp32_sampler_reads_a_rate_too():
    with RateSampler(int8=False, threads=1) as sampler:
        assert sampler.sample() > 0


def test_a_sampler_whose_child_cannot_run_raises_sampler_unavailable(monkeypatch):
    monkeypatch.setattr(matmul_rate.sys, "executable", "/bin/false")
    started, real_popen = [], subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(matmul_rate.subprocess, "Popen", popen)
    with pytest.raises(SamplerUnavailable):
        RateSampler(int8=True, threads=1)
    (process,) = started
    assert process.stdin.closed and process.stdout.closed and process.poll() is not None


def test_best_rate_reports_every_shape_and_the_best_per_dtype(monkeypatch):
    monkeypatch.setattr(matmul_rate, "SHAPES", ((64, 32, 32), (128, 32, 16)))
    monkeypatch.setattr(matmul_rate, "MIN_SECONDS", 0.0)
    result = matmul_rate.best_rate(1)
    assert result["status"] == "ok" and len(result["per_shape"]) == 4
    for dtype in ("int8", "fp32"):
        rates = [rate for name, rate in result["per_shape"].items() if name.startswith(dtype)]
        assert result[f"{dtype}_gflops_per_s"] == max(rates) > 0
