"""Export a trained detector to ONNX (fp32 + int8 dynamic quantization), verified against PyTorch."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from medcorr.detector import META_FILE, MODEL_FILE, TOKENIZER_FILE, unpadded_name, weights_name
from medcorr.encoding import NoteEncoder
from medcorr.substitutions import SUBSTITUTIONS_FILE
from medcorr.train.evaluate import validation_record
from medcorr.train.model import DetectorModel
from medcorr.train.trainer import load_checkpoint
from medcorr.train.unpadded import write_unpadded

log = logging.getLogger(__name__)
FP32_FILE = "model.fp32.onnx"
OPSET = 17
VERIFY_NOTES = (
    ("A 54-year-old man has crushing chest pain radiating to the left arm. ECG shows ST elevation in II, III "
     "and aVF. He is diagnosed with acute inferior myocardial infarction. Aspirin is given.",
     ((0, 68), (69, 117), (118, 173), (174, 192))),
    ("Fever and cough for three days. Chest x-ray shows a right lower lobe consolidation. Amoxicillin is "
     "started for community-acquired pneumonia.", ((0, 31), (32, 84), (85, 142))),
)


def export_onnx(model: DetectorModel, encoder: NoteEncoder, path: Path) -> None:
    """Write the fp32 ONNX graph with dynamic batch, sequence and segment axes."""
    batch = encoder.collate([w for ws in encoder.encode_notes(list(VERIFY_NOTES)) for w in ws])
    args = (torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask),
            torch.from_numpy(batch.segment_mask))
    torch.onnx.export(
        model, args, str(path), dynamo=False, opset_version=OPSET,
        input_names=["input_ids", "attention_mask", "segment_mask"],
        output_names=["segment_logits", "token_logits"],
        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                      "segment_mask": {0: "batch", 1: "segments", 2: "tokens"},
                      "segment_logits": {0: "batch", 1: "segments"}, "token_logits": {0: "batch", 1: "tokens"}},
    )


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization: encoder MatMul weights per channel, embedding tables per tensor.

    The small task heads stay fp32: quantizing them moved verdict scores by up to 0.27 on MEDEC notes,
    while per-channel encoder weights with fp32 heads keep the mean score change near 0.01.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(source), load_external_data=False).graph
    heads = [node.name for node in graph.node if "_head" in node.name]
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gather"], nodes_to_exclude=heads)


def max_abs_diff(model: DetectorModel, encoder: NoteEncoder, onnx_path: Path,
                 notes: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> float:
    """Largest absolute difference between PyTorch and ONNX segment logits on real inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = encoder.collate([w for ws in encoder.encode_notes(list(notes)) for w in ws])
    with torch.no_grad():
        reference = model(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask),
                          torch.from_numpy(batch.segment_mask))
    outputs = session.run(None, {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                                 "segment_mask": batch.segment_mask})
    diffs = [np.abs(out - ref.numpy()).max() for out, ref in zip(outputs, reference)]
    return float(max(diffs))


def unpadded_max_abs_diff(graph: Path, encoder: NoteEncoder,
                          notes: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> float:
    """Largest difference between a graph and its unpadded twin on single windows (no padding), in CPU
    sessions set up as the detector's: 0 when the twin is right. (onnxruntime's default sessions would
    fuse ``SkipLayerNormalization`` into the 4-d graph only, which the detector leaves out on CPU.)"""
    from medcorr.ort_cache import CPU_ONLY, create_session

    sessions = [create_session(path, CPU_ONLY, 1, use_cache=False)
                for path in (graph, graph.with_name(unpadded_name(graph.name)))]
    worst = 0.0
    for window in (w for ws in encoder.encode_notes(list(notes)) for w in ws):
        batch = encoder.collate([window])
        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
                 "segment_mask": batch.segment_mask}
        full, twin = (session.run(None, feeds) for session in sessions)
        worst = max([worst] + [float(np.abs(a - b).max()) for a, b in zip(full, twin)])
    return worst


def export_checkpoint(checkpoint: Path, out: Path, keep_fp32: bool = True,
                      verify_notes: Sequence[tuple[str, Sequence[tuple[int, int]]]] = VERIFY_NOTES,
                      cv_summary: dict | None = None) -> dict:
    """Export a ``medcorr train`` checkpoint into a model directory the component can load.

    ``cv_summary`` (a ``medcorr cv`` result for the same recipe) is recorded as the metadata's
    ``validation`` block; without it the model's verdict head has no measured discrimination.
    """
    model, record = load_checkpoint(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    config = record["config"]
    encoder = NoteEncoder(checkpoint / "backbone" / TOKENIZER_FILE, int(config["max_length"]))
    fp32 = out / FP32_FILE
    export_onnx(model, encoder, fp32)
    fp32_diff = max_abs_diff(model, encoder, fp32, verify_notes)
    quantize_int8(fp32, out / MODEL_FILE)
    int8_diff = max_abs_diff(model, encoder, out / MODEL_FILE, verify_notes)
    for graph in (fp32, out / MODEL_FILE):
        write_unpadded(graph)
    unpadded_diff = max(unpadded_max_abs_diff(graph, encoder, verify_notes) for graph in (fp32, out / MODEL_FILE))
    shutil.copy(checkpoint / "backbone" / TOKENIZER_FILE, out / TOKENIZER_FILE)
    if (checkpoint / SUBSTITUTIONS_FILE).is_file():
        shutil.copy(checkpoint / SUBSTITUTIONS_FILE, out / SUBSTITUTIONS_FILE)
    meta = {
        "version": record.get("version", "0.0.0"),
        "model_file": MODEL_FILE,
        "fp32_file": FP32_FILE if keep_fp32 else None,
        "max_length": int(config["max_length"]),
        "threshold": float(record.get("threshold", 0.5)),
        "opset": OPSET,
        "backbone": record.get("backbone", "unknown"),
        "training": {k: v for k, v in record.items() if k not in {"config"}},
        "config": config,
        "verification": {"fp32_max_abs_diff": fp32_diff, "int8_max_abs_diff": int8_diff,
                         "unpadded_max_abs_diff": unpadded_diff, "notes": len(verify_notes)},
    }
    if cv_summary is not None:
        data = ", ".join(Path(source).name for source in record.get("data", []))
        meta["validation"] = validation_record(cv_summary, data)
    (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if not keep_fp32:
        for name in (fp32.name, unpadded_name(fp32.name), weights_name(fp32.name)):
            (out / name).unlink()
    log.info("exported: fp32 max abs diff %.2e, int8 max abs diff %.2e", fp32_diff, int8_diff)
    return meta
