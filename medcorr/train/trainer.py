"""Fine-tuning the detector on labelled notes (MEDEC format), with evaluation through the runtime decoder."""
from __future__ import annotations

import json
import logging
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from medcorr.detector import decode_outputs, NotePrediction, TOKENIZER_FILE, run_in_batches
from medcorr.encoding import NoteEncoder
from medcorr.finding import ERROR_TYPES
from medcorr.train.config import TrainConfig
from medcorr.train.data import EncodedNote, LabelledNote, corrected_copy, encode_labelled
from medcorr.train.model import LOCATION, TYPE_OFFSET, VERDICT, DetectorModel, build_model

log = logging.getLogger(__name__)
CHECKPOINT_WEIGHTS = "detector.pt"
CHECKPOINT_CONFIG = "training.json"


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _note_losses(note: LabelledNote, n_sentences: int, sentence_logits: torch.Tensor, config: TrainConfig,
                 type_loss: nn.Module) -> torch.Tensor:
    """Losses of one note from its per-sentence logits ``[n_sentences, channels]`` (-inf = no tokens)."""
    covered = torch.isfinite(sentence_logits[:, LOCATION])
    total = sentence_logits.new_zeros(())
    target = note.target_sentence
    if target >= 0 and covered[target]:
        location = sentence_logits[covered, LOCATION]
        position = int(covered[:target].sum())
        total = total + config.location_weight * nn.functional.cross_entropy(
            location.unsqueeze(0), torch.tensor([position]))
    labels = torch.zeros(n_sentences)
    weights = torch.ones(n_sentences)
    if note.has_error:
        labels[note.error_sentence] = 1.0
    if target >= 0:
        weights[target] = config.claim_verdict_weight
    verdict = sentence_logits[:, VERDICT]
    bce = nn.functional.binary_cross_entropy_with_logits(
        verdict[covered], labels[covered], weight=weights[covered], reduction="sum") / weights[covered].sum()
    total = total + config.verdict_weight * bce
    if note.has_error and note.error_type is not None and covered[note.error_sentence]:
        type_index = ERROR_TYPES.index(note.error_type)
        total = total + config.type_weight * type_loss(
            sentence_logits[note.error_sentence, TYPE_OFFSET:].unsqueeze(0), torch.tensor([type_index]))
    return total


def _sentence_logits(encoded: EncodedNote, segment_logits: torch.Tensor, rows: dict[int, int]) -> torch.Tensor:
    n_sentences = len(encoded.note.sentences)
    channels = segment_logits.shape[-1]
    parts = [torch.full((channels,), float("-inf")) for _ in range(n_sentences)]
    for window in encoded.windows:
        row = rows[id(window)]
        for local, sentence in enumerate(window.segment_sentences):
            logits = segment_logits[row, local]
            parts[sentence] = logits if not torch.isfinite(parts[sentence][0]) else torch.maximum(parts[sentence], logits)
    return torch.stack(parts)


def train_model(notes: Sequence[LabelledNote], config: TrainConfig, progress: bool = True) -> tuple[DetectorModel, NoteEncoder]:
    """Fine-tune a fresh detector on ``notes``; returns the model (eval mode) and its encoder."""
    _seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    backbone = config.backbone_dir()
    model = build_model(backbone)
    encoder = NoteEncoder(backbone / TOKENIZER_FILE, config.max_length)
    training_notes = list(notes)
    if config.add_corrected_copies:
        training_notes += [copy for copy in map(corrected_copy, notes) if copy is not None]
    if config.synthetic_swaps:
        from medcorr.train.synthetic import synthetic_swaps

        swaps = synthetic_swaps(notes, config.synthetic_swaps, config.seed)
        log.info("added %d synthetic notes (lexicon sibling swaps and their clean twins)", len(swaps))
        training_notes += swaps
    data = encode_labelled(encoder, training_notes)
    if config.freeze_embeddings:
        model.encoder.embeddings.requires_grad_(False)
    head_params = list(model.segment_head.parameters()) + list(model.token_head.parameters())
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": encoder_params, "lr": config.encoder_lr},
         {"params": head_params, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = (len(data) + config.batch_notes - 1) // config.batch_notes
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, total_steps // 10)) * max(0.0, 1 - step / total_steps))
    type_loss = nn.CrossEntropyLoss()
    rng = random.Random(config.seed)
    step = 0
    started = time.monotonic()
    model.train()
    from tqdm import tqdm

    bar = tqdm(total=total_steps, desc="train", unit="step", disable=not progress)
    while step < total_steps:
        order = list(range(len(data)))
        rng.shuffle(order)
        for begin in range(0, len(order), config.batch_notes):
            if step >= total_steps:
                break
            group = [data[i] for i in order[begin: begin + config.batch_notes]]
            loss = _batch_loss(model, encoder, group, config, type_loss)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    log.info("trained %d steps on %d notes in %.0f s", step, len(data), time.monotonic() - started)
    model.eval()
    return model, encoder


def _batch_loss(model: DetectorModel, encoder: NoteEncoder, group: Sequence[EncodedNote], config: TrainConfig,
                type_loss: nn.Module) -> torch.Tensor:
    windows = [w for item in group for w in item.windows]
    batch = encoder.collate(windows)
    segment_logits, token_logits = model(
        torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask), torch.from_numpy(batch.segment_mask))
    rows = {id(w): row for row, w in enumerate(batch.windows)}
    total = segment_logits.new_zeros(())
    span_targets = np.zeros(batch.input_ids.shape, dtype=np.float32)
    span_mask = np.zeros(batch.input_ids.shape, dtype=np.float32)
    for item in group:
        sentence_logits = _sentence_logits(item, segment_logits, rows)
        total = total + _note_losses(item.note, len(item.note.sentences), sentence_logits, config, type_loss)
        if item.note.has_error:
            for window, labels in zip(item.windows, item.token_labels):
                span_targets[rows[id(window)], : window.length] = labels
                span_mask[rows[id(window)], : window.length] = 1.0
    if span_mask.any():
        mask = torch.from_numpy(span_mask)
        span = nn.functional.binary_cross_entropy_with_logits(
            token_logits, torch.from_numpy(span_targets), weight=mask, reduction="sum") / mask.sum()
        total = total + config.span_weight * span * len(group)
    return total / len(group)


@torch.no_grad()
def predict_torch(model: DetectorModel, encoder: NoteEncoder, notes: Sequence[tuple[str, Sequence[tuple[int, int]]]],
                  batch_size: int = 16) -> list[NotePrediction]:
    """Predictions of the PyTorch model, decoded exactly like the ONNX runtime decodes them."""
    model.eval()
    windows_per_note = encoder.encode_notes(notes)
    windows = [w for ws in windows_per_note for w in ws]

    def run_batch(batch):
        seg, tok = model(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask),
                         torch.from_numpy(batch.segment_mask))
        return seg.numpy(), tok.numpy()

    segment_logits, token_logits = run_in_batches(encoder, windows, batch_size, run_batch)
    return decode_outputs(windows_per_note, [len(s) for _, s in notes], segment_logits, token_logits)


def save_checkpoint(model: DetectorModel, encoder_dir: Path, out: Path, config: TrainConfig, extra: dict) -> None:
    """Write a training checkpoint: weights, backbone config + tokenizer, and the training record."""
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / CHECKPOINT_WEIGHTS)
    model.encoder.config.save_pretrained(out / "backbone")
    for name in (TOKENIZER_FILE, "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (encoder_dir / name).is_file():
            shutil.copy(encoder_dir / name, out / "backbone" / name)
    record = {"config": asdict(config), **extra}
    (out / CHECKPOINT_CONFIG).write_text(json.dumps(record, indent=2), encoding="utf-8")


def load_checkpoint(path: Path) -> tuple[DetectorModel, dict]:
    """Rebuild a trained detector from :func:`save_checkpoint` output."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(path / "backbone"), local_files_only=True)
    config._attn_implementation = "eager"
    model = DetectorModel(AutoModel.from_config(config, attn_implementation="eager"))
    model.load_state_dict(torch.load(path / CHECKPOINT_WEIGHTS, map_location="cpu"))
    model.eval()
    record = json.loads((path / CHECKPOINT_CONFIG).read_text(encoding="utf-8"))
    return model, record
