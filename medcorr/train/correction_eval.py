"""How often the offline generator's candidates contain the reference correction (MEDEC, no leakage).

For each grouped CV fold (the same folds as ``medcorr cv``), substitution pairs are learned from the
training folds only; for every test error note the generator ranks candidates for the gold error span with
the gold error type, and we check whether the reference corrected span is among the top 1 / top 5
(case- and punctuation-insensitive equality). With ``cv_json`` the population is restricted to the error
notes whose error sentence the fold's detector located (issue target); otherwise all error notes count.

``pool_sizes`` also reports the ceiling of any re-ranking: how often the reference is anywhere among the
first N candidates the generator can produce (learned pairs first, then lexicon siblings).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from medcorr.generators.knowledge import KnowledgeGenerator
from medcorr.substitutions import SubstitutionTable, normalize
from medcorr.train.data import LabelledNote, diff_span, substitution_examples
from medcorr.train.folds import grouped_folds


def reference_span(note: LabelledNote) -> str:
    """The corrected span of an error note (the part of the corrected sentence that differs)."""
    start, end = note.sentences[note.error_sentence]
    right_start, right_end = diff_span(note.corrected_sentence or "", note.text[start:end])
    return (note.corrected_sentence or "")[right_start:right_end]


def evaluate_corrections(notes: Sequence[LabelledNote], n_folds: int = 5, seed: int = 13,
                         cv_json: Path | None = None, use_learned_pairs: bool = True,
                         pool_sizes: Sequence[int] = (20, 100, 400)) -> dict:
    """Top-1 / top-5 hit rates of the reference corrected span, pooled over the test folds, and its recall
    in candidate pools of ``pool_sizes``."""
    folds = grouped_folds([n.text for n in notes], n_folds=n_folds, seed=seed)
    located: set[str] | None = None
    if cv_json is not None:
        summary = json.loads(cv_json.read_text(encoding="utf-8"))
        by_id = {n.note_id: n for n in notes}
        located = {note_id for fold in summary["per_fold"] for note_id, _score, suspect in fold["scores"]
                   if by_id[note_id].has_error and suspect == by_id[note_id].error_sentence}
    hits1 = hits5 = total = with_candidates = 0
    pool_hits = {size: 0 for size in pool_sizes}
    per_type: dict[str, list[int]] = {}
    for fold in range(n_folds):
        train = [n for n, f in zip(notes, folds) if f != fold]
        generator = KnowledgeGenerator(top_k=5, max_candidates=max([5, *pool_sizes]))
        generator._table = SubstitutionTable.learn(substitution_examples(train)) if use_learned_pairs else SubstitutionTable()
        for note in (n for n, f in zip(notes, folds) if f == fold):
            if not note.has_error or not note.corrected_sentence or note.error_type is None:
                continue
            if located is not None and note.note_id not in located:
                continue
            span_text = note.text[note.error_span[0]:note.error_span[1]]
            pool = [normalize(text) for text, _ in generator.candidates(span_text, note.error_type)]
            ranked = pool[:5]
            target = normalize(reference_span(note))
            for size in pool_sizes:
                pool_hits[size] += target in pool[:size]
            total += 1
            with_candidates += bool(ranked)
            hit1, hit5 = bool(ranked) and ranked[0] == target, target in ranked
            hits1 += hit1
            hits5 += hit5
            row = per_type.setdefault(note.error_type.medec_name, [0, 0, 0])
            row[0] += 1
            row[1] += hit1
            row[2] += hit5
    return {
        "notes": total, "with_candidates": with_candidates,
        "top1": hits1 / total if total else float("nan"), "top5": hits5 / total if total else float("nan"),
        "pool_recall": {str(size): hits / total if total else float("nan") for size, hits in pool_hits.items()},
        "population": "error notes whose error sentence the CV detector located" if located is not None else "all error notes",
        "per_type": {k: {"n": n, "top1": a / n, "top5": b / n} for k, (n, a, b) in per_type.items()},
    }
