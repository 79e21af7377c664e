"""Substitution pairs learned from training data: (error span, its type) -> corrected spans seen for it.

Written by ``medcorr train`` from the training notes only (so cross-validation never sees a test fold's
pairs) and shipped next to the model as ``substitutions.json``; read by the knowledge generator.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

SUBSTITUTIONS_FILE = "substitutions.json"


def normalize(text: str) -> str:
    """The lookup key of a span: lower case, single spaces, no surrounding punctuation."""
    return " ".join(text.lower().split()).strip(" .,;:")


class SubstitutionTable:
    """Counts of ``error span -> corrected span``, per error type, looked up case-insensitively."""

    def __init__(self, pairs: dict[str, dict[str, Counter]] | None = None):
        self.pairs: dict[str, dict[str, Counter]] = pairs or {}

    @classmethod
    def learn(cls, examples: Iterable[tuple[str, str, str]]) -> "SubstitutionTable":
        """From ``(error type, error span, corrected span)`` triples."""
        pairs: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
        for error_type, wrong, right in examples:
            if normalize(wrong) and normalize(right) and normalize(wrong) != normalize(right):
                pairs[error_type][normalize(wrong)][right.strip(" .,;:")] += 1
        return cls({t: dict(v) for t, v in pairs.items()})

    def candidates(self, error_type: str, span_text: str) -> list[tuple[str, int]]:
        """Corrections seen for this span: same type first, then any type; most frequent first."""
        key = normalize(span_text)
        seen: Counter = Counter()
        for counts in [self.pairs.get(error_type, {}).get(key, Counter())]:
            seen.update({k: v * 2 for k, v in counts.items()})
        for other, table in self.pairs.items():
            if other != error_type:
                seen.update(table.get(key, Counter()))
        return sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))

    def __len__(self) -> int:
        return sum(len(v) for v in self.pairs.values())

    def save(self, path: Path) -> None:
        data = {t: {w: dict(c) for w, c in table.items()} for t, table in self.pairs.items()}
        path.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "SubstitutionTable":
        """Read a saved table; an empty table when the file does not exist."""
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls({t: {w: Counter(c) for w, c in table.items()} for t, table in data.items()})
