"""``medcorr bench``: a quick real run on the shipped example notes, checked for its JSON contract."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from medcorr.benchmark import bench
from medcorr.benchmark.bench import (INT8_MATMUL_CLASS, OTHER_OPS, TARGETS, _add_efficiency, _percentile, load_notes,
                           merge_cold_starts, merge_rounds, model_flops, op_class_times, render_markdown)
from medcorr.cli import UsageError
from medcorr.detector import MODEL_FILE, default_model_dir

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "runs" / "default-ckpt"
CLI = [sys.executable, "-c", "import sys; from medcorr.cli import main; sys.exit(main(sys.argv[1:]))"]
LIMIT = 4


def _torch_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


@pytest.fixture(scope="module")
def report():
    command = [*CLI, "bench", "--json", "--repeat", "1", "--batch-size", "2", "--limit", str(LIMIT)]
    with_torch = (CHECKPOINT / "detector.pt").is_file() and _torch_available()
    if with_torch:
        command += ["--checkpoint", str(CHECKPOINT)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    data["_with_torch"] = with_torch
    data["_stderr"] = result.stderr
    return data


def test_detector_figures_are_positive_and_consistent(report):
    settings, workload = report["settings"], report["workload"]
    notes, _ = load_notes(None, LIMIT)
    assert settings["notes"] == len(notes) == LIMIT
    assert settings["sentences"] == sum(len(spans) for _, spans in notes)
    assert settings["threads"] >= 1 and settings["batch_size_notes"] == 2
    assert settings["window_batch"] == 1  # the CPU runtime default: one window per model call
    assert workload["tokens"] >= settings["notes"] and workload["padded_tokens"] >= workload["tokens"]
    measured = [v for v in report["detector"].values() if v["status"] == "ok"]
    assert report["detector"]["onnx_int8"]["status"] == "ok"
    for variant in measured:
        assert variant["notes_per_s"] > 0
        assert variant["sentences_per_s"] >= variant["notes_per_s"]
        assert variant["tokens_per_s"] >= variant["sentences_per_s"]
        assert variant["notes_per_s"] == pytest.approx(settings["notes"] / variant["seconds_median"])
        assert variant["tokens_per_s"] == pytest.approx(variant["stats"]["tokens"] / variant["seconds_median"])
        assert 0 < variant["peak_rss_bytes"] < 64 * 2**30
        if variant.get("latency_ms"):
            latency = variant["latency_ms"]
            assert 0 < latency["p50"] <= latency["p99"] and latency["samples"] >= settings["notes"]


def test_skipped_variants_say_why(report):
    fp32 = report["detector"]["onnx_fp32"]
    assert fp32["status"] == "skipped" and "model.fp32.onnx" in fp32["note"]
    torch_variant = report["detector"]["torch_fp32"]
    if report["_with_torch"]:
        assert torch_variant["status"] == "ok"
        assert report["targets"]["int8_vs_torch_fp32"]["value"] == pytest.approx(
            report["detector"]["onnx_int8"]["notes_per_s"] / torch_variant["notes_per_s"])
    else:
        assert torch_variant["status"] == "skipped" and torch_variant["note"]
        assert report["targets"]["int8_vs_torch_fp32"]["met"] is None


def test_flops_matmul_and_targets(report):
    flops, matmul = report["flops"], report["matmul"]
    assert flops["status"] == "ok" and flops["layers"] >= 1 and flops["hidden"] >= 1
    assert flops["tokens_per_pass"] == report["workload"]["tokens"]
    assert flops["flops_per_token_mean"] >= 2 * flops["matmul_weights"]
    assert matmul["status"] == "ok" and matmul["int8_gflops_per_s"] > 0 and matmul["fp32_gflops_per_s"] > 0
    int8 = report["detector"]["onnx_int8"]
    assert int8["useful_gflops_per_s"] == pytest.approx(
        flops["useful_flops_per_pass"] / int8["seconds_median"] / 1e9)
    assert int8["matmul_fraction_of_best_rate"] == pytest.approx(
        int8["useful_gflops_per_s"] / matmul["int8_gflops_per_s"])
    # the target's fraction: each pass against the rate sampled during it (one pass per round here)
    capacities = int8["matmul_capacity_gflop_all"]
    assert len(capacities) == len(int8["seconds_all"]) == report["settings"]["repeat"]
    assert int8["matmul_fraction"] == pytest.approx(
        statistics.median(flops["useful_flops_per_pass"] / 1e9 / c for c in capacities))
    assert all(rate > 0 for rate in int8["matmul_rate_during_passes_gflops_per_s"])
    assert set(report["targets"]) == {t.name for t in TARGETS}
    for name, target in report["targets"].items():
        assert target["met"] in (True, False, None)
        assert (target["value"] is None) == (target["met"] is None), name
    assert report["targets"]["int8_matmul_fraction"]["value"] == pytest.approx(int8["matmul_fraction"])


def test_int8_profile_shares_and_bound(report):
    profile, int8 = report["int8_profile"], report["detector"]["onnx_int8"]
    assert profile["status"] == "ok" and profile["notes"] == LIMIT and profile["windows"] >= LIMIT
    assert profile["threads_per_call"] >= 1 and profile["kernel_ms_per_window"] > 0
    assert sum(profile["shares"].values()) == pytest.approx(1.0)
    assert profile["shares"][INT8_MATMUL_CLASS] > 0.05  # the shipped model is int8: its weight matmuls show up
    assert profile["matmul_fraction_if_only_int8_matmuls"] == pytest.approx(
        int8["matmul_fraction"] / profile["shares"][INT8_MATMUL_CLASS])


def test_op_class_times_drop_warmup_runs_and_classify_by_op():
    def node(op: str, ts: int, dur: int) -> dict:
        return {"cat": "Node", "name": f"n_{op}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}

    events = [node("MatMulInteger", 1, 1000), {"cat": "Session", "name": "model_run", "ts": 0, "dur": 10},
              node("DynamicQuantizeMatMul", 20, 30), node("Softmax", 25, 5), node("Transpose", 26, 7),
              {"cat": "Session", "name": "model_run", "ts": 15, "dur": 20}, node("Where", 40, 1)]
    times = op_class_times(events, skip_runs=1)
    assert times[INT8_MATMUL_CLASS] == 30 and times["softmax"] == 5 and times[OTHER_OPS] == 8
    assert op_class_times(events)[INT8_MATMUL_CLASS] == 1030


def test_rounds_merge_into_the_median_pass_and_the_largest_rss():
    rounds = [{"status": "ok", "seconds_all": [2.0], "peak_rss_bytes": 100, "stats": {"tokens": 1000},
               "latency_ms": {"p50": 5.0}, "wall_s": 3.0},
              {"status": "ok", "seconds_all": [4.0], "peak_rss_bytes": 300, "latency_ms": None, "wall_s": 5.0},
              {"status": "ok", "seconds_all": [1.0], "peak_rss_bytes": 200, "latency_ms": None, "wall_s": 2.0}]
    merged = merge_rounds(rounds, notes=10, sentences=40)
    assert merged["seconds_all"] == [2.0, 4.0, 1.0] and merged["seconds_median"] == 2.0
    assert (merged["notes_per_s"], merged["sentences_per_s"], merged["tokens_per_s"]) == (5.0, 20.0, 500.0)
    assert merged["peak_rss_bytes"] == 300 and merged["latency_ms"] == {"p50": 5.0}
    assert merged["wall_s"] == 10.0 and merged["rounds"] == 3
    failed = {"status": "error", "note": "boom"}
    assert merge_rounds([rounds[0], failed], notes=10) == failed


def test_rounds_merge_keeps_every_pass_matmul_capacity():
    rounds = [{"status": "ok", "seconds_all": [2.0], "matmul_capacity_gflop_all": [1800.0]},
              {"status": "ok", "seconds_all": [3.0], "matmul_capacity_gflop_all": [2100.0]}]
    assert merge_rounds(rounds, notes=10)["matmul_capacity_gflop_all"] == [1800.0, 2100.0]
    unsampled = [rounds[0], {"status": "ok", "seconds_all": [3.0], "matmul_samples_note": "no onnx"}]
    assert "matmul_capacity_gflop_all" not in merge_rounds(unsampled, notes=10)


def test_matmul_fraction_is_each_pass_against_the_rate_sampled_during_it():
    variants = {"onnx_int8": {"seconds_all": [1.0, 2.0, 4.0], "seconds_median": 2.0,
                              "matmul_capacity_gflop_all": [1000.0, 1000.0, 8000.0]},
                "onnx_fp32": {"seconds_all": [5.0], "seconds_median": 5.0}}
    _add_efficiency(variants, {"useful_flops_per_pass": 400e9}, {"int8_gflops_per_s": 1600.0,
                                                                 "fp32_gflops_per_s": 200.0})
    int8, fp32 = variants["onnx_int8"], variants["onnx_fp32"]
    assert int8["matmul_fractions"] == pytest.approx([0.4, 0.4, 0.05]) and int8["matmul_fraction"] == 0.4
    assert int8["matmul_rate_during_passes_gflops_per_s"] == pytest.approx([1000.0, 500.0, 2000.0])
    assert int8["useful_gflops_per_s"] == 200.0 and int8["matmul_fraction_of_best_rate"] == 0.125
    assert fp32["matmul_fraction"] is None and fp32["matmul_fraction_of_best_rate"] == pytest.approx(0.4)


class _ScriptedSampler:
    def __init__(self, rates):
        self.rates = iter(rates)

    def sample(self) -> float:
        return next(self.rates)


def test_sampled_passes_count_each_chunk_at_the_mean_of_the_samples_around_it(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["now"])
    durations = iter([1.0, 3.0, 2.0, 2.0])

    def run_chunk(chunk):
        clock["now"] += next(durations)

    sampler = _ScriptedSampler([100.0, 200.0, 300.0, 1000.0, 1000.0, 1000.0])
    seconds, capacities = bench._time_sampled_passes("toy", run_chunk, list(range(4)), 2, 2, sampler)
    assert seconds == [4.0, 4.0]
    assert capacities == [1.0 * 150.0 + 3.0 * 250.0, 4.0 * 1000.0]


def test_cold_starts_merge_into_the_median_round_whose_parts_add_up():
    def run(total: float) -> dict:
        return {"status": "ok", "runs": 1, "import_spacy_s": total / 2, "build_s": total / 4,
                "first_note_s": total / 4, "total_s": total, "all_total_s": [total]}

    merged = merge_cold_starts([run(3.0), run(1.0), run(2.0)])
    assert merged["total_s"] == 2.0 and merged["import_spacy_s"] + merged["build_s"] + merged["first_note_s"] == 2.0
    assert merged["runs"] == 3 and merged["all_total_s"] == [3.0, 1.0, 2.0]


def test_end_to_end_and_cold_start(report):
    for name, pipeline in report["end_to_end"].items():
        assert pipeline["status"] in ("ok", "error"), name
        if pipeline["status"] == "ok":
            assert pipeline["notes_per_s"] > 0
            assert pipeline["peak_rss_bytes"] is None if name == "medspacy_only" else pipeline["peak_rss_bytes"] > 0
    medspacy = report["end_to_end"]["medspacy"]
    if medspacy["status"] == "ok":
        assert medspacy["components"][-1] == "medcorr" and len(medspacy["components"]) >= 4
        assert report["end_to_end"]["medspacy_only"]["components"] == medspacy["components"][:-1]
    fast = report["end_to_end"]["medspacy_fast"]
    if fast["status"] == "ok":
        assert "medcorr_sentencizer" in fast["components"] and "medspacy_pyrush" not in fast["components"]
        assert fast["components"][-1] == "medcorr" and len(fast["components"]) >= 4
        # paired: each pipeline pass against the detector-only passes right before and after it
        detector, passes = fast["detector_seconds_all"], fast["seconds_all"]
        assert len(detector) == len(passes) + fast["rounds"]  # one extra detector pass per round
        # one worker per round: its detector passes are [before, after] around its one pipeline pass
        pairs = [detector[2 * r: 2 * r + 2] for r in range(fast["rounds"])]
        assert fast["detector_ratios"] == pytest.approx([(b + a) / 2 / p for (b, a), p in zip(pairs, passes)])
        assert report["targets"]["end_to_end_vs_detector"]["value"] == pytest.approx(
            statistics.median(fast["detector_ratios"]))
    assert set(report["cold_start"]) == {"default", "default_runtime", "medspacy"}
    if report["cold_start"]["default_runtime"]["status"] == "ok":
        assert report["targets"]["cold_start_s"]["value"] == report["cold_start"]["default_runtime"]["total_s"]
    for name, cold in report["cold_start"].items():
        if cold["status"] == "ok":
            assert 0 < cold["import_spacy_s"] < cold["total_s"]
            assert cold["total_s"] == pytest.approx(cold["import_spacy_s"] + cold["build_s"] + cold["first_note_s"])


def test_markdown_names_the_machine_and_every_row(report):
    text = render_markdown({k: v for k, v in report.items() if not k.startswith("_")})
    assert report["machine"]["cpu"] in text and f"{report['machine']['usable_cores']} cores" in text
    for label in ("ONNX int8", "ONNX fp32", "PyTorch fp32", "nlp.pipe", "Cold start", "Target", "time goes"):
        assert label in text
    assert "|---" in text


def test_no_verifier_configured_no_verifier_section(report):
    assert "verifier" not in report and "Verifier" not in render_markdown(
        {k: v for k, v in report.items() if not k.startswith("_")})
    assert "bench: verifier" not in report["_stderr"]


def test_no_note_text_in_output(report):
    notes, _ = load_notes(None, LIMIT)
    output = json.dumps({k: v for k, v in report.items() if not k.startswith("_")}) + report["_stderr"]
    for text, spans in notes:
        for start, end in spans:
            sentence = text[start:end]
            if len(sentence) > 30:
                assert sentence not in output


def _toy_encoder(path: Path, layers: int, hidden: int, inner: int) -> int:
    """A graph shaped like a transformer encoder (weights only where FLOPs are counted); its weight count."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    nodes, weights, current, total = [], [], "x", 0
    for layer in range(layers):
        for name, (k, n) in {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden),
                             "o": (hidden, hidden), "ff1": (hidden, inner), "ff2": (inner, hidden)}.items():
            weight = f"w{layer}{name}"
            weights.append(numpy_helper.from_array(np.zeros((k, n), dtype=np.float32), weight))
            nodes.append(helper.make_node("MatMul", [current, weight], [f"{weight}_out"], name=f"/l{layer}/{name}"))
            current, total = f"{weight}_out", total + k * n
        nodes.append(helper.make_node("Softmax", [current], [f"s{layer}"], name=f"/l{layer}/softmax"))
        current = f"s{layer}"
    weights.append(numpy_helper.from_array(np.zeros((hidden, 3), dtype=np.float32), "head_w"))
    nodes.append(helper.make_node("MatMul", [current, "head_w"], ["y"], name="/segment_head/MatMul"))
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["t", hidden])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["t", 3])], initializer=weights)
    save(helper.make_model(graph), str(path))
    return total


def test_model_flops_counts_weights_and_attention_from_the_graph(tmp_path):
    pytest.importorskip("onnx")
    weights = _toy_encoder(tmp_path / "toy.onnx", layers=3, hidden=16, inner=48)
    flops = model_flops(tmp_path / "toy.onnx", [10, 30])
    assert (flops["matmul_weights"], flops["layers"], flops["hidden"]) == (weights, 3, 16)
    assert flops["useful_flops_per_pass"] == sum(2 * weights * n + 4 * 3 * 16 * n * n for n in (10, 30))
    assert flops["flops_per_token_mean"] == pytest.approx(flops["useful_flops_per_pass"] / 40)
    shipped = model_flops(default_model_dir() / MODEL_FILE, [128])
    assert shipped["status"] == "ok" and shipped["flops_per_token_mean"] > 2 * shipped["matmul_weights"] > 0


def test_percentile_and_bad_arguments():
    assert _percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert _percentile([5.0], 99) == 5.0
    with pytest.raises(UsageError):
        load_notes("/nonexistent/medec.csv")
    result = subprocess.run([*CLI, "bench", "--repeat", "0"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and "--repeat" in result.stderr


def test_runtime_path_does_not_import_the_benchmark_package():
    code = ("import sys, medcorr, medcorr.component, medcorr.pipeline, medcorr.stream.consumer\n"
            "print(sorted(m for m in sys.modules if m.startswith('medcorr.benchmark')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
