"""Turning notes into model inputs: one tokenization shared by training and inference.

A note is tokenized once (Hugging Face ``tokenizers``, no torch needed) and packed into windows of whole
sentences that fit the encoder's maximum length. Each window becomes one row of a batch; a *segment* is the
part of one sentence inside one window (a sentence longer than a window is split into several segments).
The model pools token states per segment, so one encoder pass scores every sentence of the note.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

SentenceSpans = Sequence[tuple[int, int]]


@dataclass
class Window:
    """One encoder row: token ids, their character offsets, and the sentence of each segment."""

    note_index: int
    input_ids: np.ndarray  # [T] int64, with [CLS] ... [SEP]
    offsets: np.ndarray  # [T, 2] char offsets into the note; (-1, -1) for special tokens
    segment_of_token: np.ndarray  # [T] int32: local segment index, -1 for special tokens
    segment_sentences: list[int]  # note-level sentence index of each local segment

    @property
    def length(self) -> int:
        """Number of tokens, special tokens included."""
        return int(self.input_ids.shape[0])


@dataclass
class Batch:
    """Padded arrays for one ONNX / torch call, with the bookkeeping to map results back to notes."""

    input_ids: np.ndarray  # [B, T] int64
    attention_mask: np.ndarray  # [B, T] int64
    segment_mask: np.ndarray  # [B, S, T] float32, rows sum to 1 (mean pooling) or 0 (padding)
    windows: list[Window]

    @property
    def real_tokens(self) -> int:
        """Tokens that are not padding (the useful work of this batch)."""
        return int(self.attention_mask.sum())


class NoteEncoder:
    """Tokenizes notes and packs their sentences into encoder windows.

    ``max_length`` counts the [CLS] and [SEP] tokens, like Hugging Face models do.
    """

    def __init__(self, tokenizer_path: str | Path, max_length: int = 512):
        from tokenizers import Tokenizer

        if max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {max_length}")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_length = max_length
        self.cls_id = self._special_id("[CLS]", "<s>")
        self.sep_id = self._special_id("[SEP]", "</s>")
        self.pad_id = self._special_id("[PAD]", "<pad>")

    def _special_id(self, *names: str) -> int:
        for name in names:
            token_id = self.tokenizer.token_to_id(name)
            if token_id is not None:
                return int(token_id)
        raise ValueError(f"tokenizer has none of the special tokens {names}")

    def encode_notes(self, notes: Sequence[tuple[str, SentenceSpans]]) -> list[list[Window]]:
        """Windows for each ``(text, sentence spans)`` note; an empty list for a note without tokens."""
        encodings = self.tokenizer.encode_batch([text for text, _ in notes], add_special_tokens=False)
        return [
            self._windows(index, np.asarray(enc.ids, dtype=np.int64), np.asarray(enc.offsets, dtype=np.int64), spans)
            for index, (enc, (_, spans)) in enumerate(zip(encodings, notes))
        ]

    def _windows(self, note_index: int, ids: np.ndarray, offsets: np.ndarray, spans: SentenceSpans) -> list[Window]:
        if ids.size == 0 or not spans:
            return []
        offsets = offsets.reshape(-1, 2)
        starts = np.asarray([start for start, _ in spans], dtype=np.int64)
        sentence_of_token = np.clip(np.searchsorted(starts, offsets[:, 0], side="right") - 1, 0, len(spans) - 1)
        if ids.size <= self.max_length - 2:  # the whole note in one window (most notes): what packing gives
            sentences, local = np.unique(sentence_of_token, return_inverse=True)
            return [self._window(note_index, ids, offsets, np.arange(ids.size), local.astype(np.int32),
                                 [int(sentence) for sentence in sentences])]
        return self._packed_windows(note_index, ids, offsets, sentence_of_token)

    def _packed_windows(self, note_index: int, ids: np.ndarray, offsets: np.ndarray,
                        sentence_of_token: np.ndarray) -> list[Window]:
        """Whole sentences packed into windows in order; a sentence longer than a window is split."""
        budget = self.max_length - 2
        windows: list[Window] = []
        current: list[tuple[int, np.ndarray]] = []  # (sentence, token indices)
        used = 0
        for sentence in np.unique(sentence_of_token):
            tokens = np.flatnonzero(sentence_of_token == sentence)
            for begin in range(0, tokens.size, budget):
                piece = tokens[begin : begin + budget]
                if used + piece.size > budget and current:
                    windows.append(self._make_window(note_index, ids, offsets, current))
                    current, used = [], 0
                current.append((int(sentence), piece))
                used += piece.size
        if current:
            windows.append(self._make_window(note_index, ids, offsets, current))
        return windows

    def _make_window(self, note_index: int, ids: np.ndarray, offsets: np.ndarray,
                     segments: list[tuple[int, np.ndarray]]) -> Window:
        token_index = np.concatenate([piece for _, piece in segments])
        segment_of_token = np.concatenate(
            [np.full(piece.size, local, dtype=np.int32) for local, (_, piece) in enumerate(segments)]
        )
        return self._window(note_index, ids, offsets, token_index, segment_of_token,
                            [sentence for sentence, _ in segments])

    def _window(self, note_index: int, ids: np.ndarray, offsets: np.ndarray, token_index: np.ndarray,
                segment_of_token: np.ndarray, segment_sentences: list[int]) -> Window:
        """The window of the tokens ``token_index`` (in order), between [CLS] and [SEP]."""
        special = np.asarray([-1], dtype=np.int32)
        no_offset = np.asarray([[-1, -1]], dtype=np.int64)
        return Window(
            note_index=note_index,
            input_ids=np.concatenate([[self.cls_id], ids[token_index], [self.sep_id]]).astype(np.int64),
            offsets=np.concatenate([no_offset, offsets[token_index], no_offset]),
            segment_of_token=np.concatenate([special, segment_of_token, special]),
            segment_sentences=segment_sentences,
        )

    def collate(self, windows: Sequence[Window]) -> Batch:
        """Pad windows into one batch (dynamic padding: to the longest window, never to ``max_length``)."""
        batch_size = len(windows)
        max_tokens = max((w.length for w in windows), default=0)
        max_segments = max((len(w.segment_sentences) for w in windows), default=0)
        input_ids = np.full((batch_size, max_tokens), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((batch_size, max_tokens), dtype=np.int64)
        segment_mask = np.zeros((batch_size, max_segments, max_tokens), dtype=np.float32)
        for row, window in enumerate(windows):
            input_ids[row, : window.length] = window.input_ids
            attention_mask[row, : window.length] = 1
            positions = np.flatnonzero(window.segment_of_token >= 0)
            segments = window.segment_of_token[positions]
            segment_mask[row, segments, positions] = 1.0
        counts = segment_mask.sum(axis=2, keepdims=True)
        np.divide(segment_mask, counts, out=segment_mask, where=counts > 0)
        return Batch(input_ids, attention_mask, segment_mask, list(windows))


def length_buckets(windows: Sequence[Window], batch_size: int, max_padding: float | None = None) -> list[list[int]]:
    """Indices of ``windows`` grouped into batches of similar length, so padding stays small.

    With ``max_padding`` set, a batch is also closed before its padding would exceed that fraction of its
    real tokens (``0.1``: at most 10 % extra work), so one long window does not make a whole batch pay
    for its length. More, smaller batches; with int8 dynamic quantization the activation scales are per
    batch, so scores move at the same ~1e-2 level as with any other batch composition.
    """
    order = sorted(range(len(windows)), key=lambda i: windows[i].length)
    if max_padding is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    buckets: list[list[int]] = []
    current: list[int] = []
    real = 0
    for index in order:
        length = windows[index].length
        too_padded = (len(current) + 1) * length > (real + length) * (1 + max_padding)
        if current and (len(current) >= batch_size or too_padded):
            buckets.append(current)
            current, real = [], 0
        current.append(index)
        real += length
    if current:
        buckets.append(current)
    return buckets
