"""Grouped cross-validation folds.

MEDEC-MS pairs most error notes with a clean twin of the same vignette (same patient, one statement
changed). Splitting a pair across train and test leaks the answer, so folds are built over groups of
near-duplicate notes (word-trigram Jaccard > 0.5), shuffled with a fixed seed.
"""
from __future__ import annotations

import random
from typing import Sequence

DUPLICATE_JACCARD = 0.5


def _shingles(text: str) -> set[tuple[str, str, str]]:
    words = text.lower().split()
    return set(zip(words, words[1:], words[2:]))


def near_duplicate_groups(texts: Sequence[str], threshold: float = DUPLICATE_JACCARD) -> list[int]:
    """A group id per text; texts whose trigram Jaccard exceeds ``threshold`` share a group."""
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    shingles = [_shingles(t) for t in texts]
    index: dict[tuple[str, str, str], list[int]] = {}
    for i, sh in enumerate(shingles):
        for gram in sh:
            index.setdefault(gram, []).append(i)
    for i, sh in enumerate(shingles):
        overlap: dict[int, int] = {}
        for gram in sh:
            for j in index[gram]:
                if j > i:
                    overlap[j] = overlap.get(j, 0) + 1
        for j, common in overlap.items():
            union = len(sh) + len(shingles[j]) - common
            if union and common / union > threshold:
                parent[find(j)] = find(i)
    return [find(i) for i in range(len(texts))]


def grouped_folds(texts: Sequence[str], n_folds: int = 5, seed: int = 13) -> list[int]:
    """A fold index (0..n_folds-1) per text; near-duplicate groups never straddle folds."""
    groups = near_duplicate_groups(texts)
    unique = sorted(set(groups))
    random.Random(seed).shuffle(unique)
    size_of = {g: groups.count(g) for g in unique}
    sizes = [0] * n_folds
    fold_of_group = {}
    for group in unique:
        fold = min(range(n_folds), key=lambda f: sizes[f])
        fold_of_group[group] = fold
        sizes[fold] += size_of[group]
    return [fold_of_group[g] for g in groups]
