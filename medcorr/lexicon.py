"""The shipped clinical lexicon: diagnoses, drugs, organisms and procedures, with sibling look-up.

The lexicon is one gzip'd JSON-lines file built at development time by :mod:`medcorr.lexicon_build` from
ICD-10-CM, MeSH, DrugBank open data, microbex and curated lists (see ``data/LEXICON_PROVENANCE.md``). At
run time only that file is read::

    from medcorr.lexicon import Lexicon

    lex = Lexicon.load()                       # the packaged file, cached per process
    lex.entries_for("Pneumonia")               # [LexiconEntry(kind='diagnosis', name='pneumonia', ...)]
    lex.siblings("amoxicillin", "drug", 5)     # ['ampicillin', 'penicillin G', ...]

Siblings are plausible alternatives of the same kind, ranked by how close their groups are: for diagnoses
the same ICD-10-CM category, then the same block, then the same MeSH branch; for drugs the same curated
class or MeSH chemical branch, then the same MeSH pharmacological action; for organisms the same genus
(or virus family), then the same organism category (gram-positive cocci, yeasts, ...); for procedures the
same curated group. Ties are broken by prominence (how many sources know the concept, whether it is a
commonly prescribed drug ...), then by shorter names, then alphabetically, so results are deterministic.
"""
from __future__ import annotations

import gzip
import json
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from medcorr.gc_pause import paused_gc

__all__ = ["KINDS", "Lexicon", "LexiconEntry", "lookup_key", "default_lexicon_path"]

#: The entry kinds, in a fixed order.
KINDS: tuple[str, ...] = ("diagnosis", "drug", "organism", "procedure")
#: How many ``(term, kind, limit)`` sibling lists :meth:`Lexicon.siblings` keeps.
SIBLING_CACHE_SIZE = 4096

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00a0": " "})

# Sibling scores per group type and kind. MeSH tree numbers score by how deep the shared branch is.
_GROUP_WEIGHTS: dict[str, dict[str, float]] = {
    "diagnosis": {"icd": 100.0, "blk": 80.0},
    "drug": {"cls": 95.0, "area": 85.0, "pa": 75.0},
    "organism": {"genus": 100.0, "orgcat": 60.0},
    "procedure": {"proc": 100.0},
}
# score for a shared MeSH parent branch / grandparent branch, per kind
_MESH_WEIGHTS: dict[str, tuple[float, float]] = {
    "diagnosis": (70.0, 50.0),
    "drug": (65.0, 50.0),
    "organism": (0.0, 0.0),
    "procedure": (0.0, 0.0),
}
_AGREEMENT_BONUS = 5.0
_MIN_MESH_SEGMENTS = 2  # never treat a whole top-level tree ("C08", "D02") as a branch


def lookup_key(text: str) -> str:
    """The normalised form terms are looked up by: NFKC, lower case, straight quotes, hyphens as spaces,
    single spaces, no surrounding punctuation. ``"Non-Hodgkin  lymphoma."`` -> ``"non hodgkin lymphoma"``."""
    if not text.isascii():  # NFKC and the quote map leave ASCII text as it is
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = text.lower().replace("-", " ")
    return " ".join(text.split()).strip(" .,;:!?\"()[]")


def _closest(depths: tuple[int, ...], depth: int) -> int:
    """How far (in tree levels, at most 5) the nearest of a candidate's tree-number ``depths`` is from ``depth``."""
    if len(depths) == 1:
        return min(abs(depths[0] - depth), 5)
    return min(min(abs(d - depth) for d in depths), 5)


def default_lexicon_path() -> Path:
    """Path of the lexicon file shipped in the package (``medcorr/data/lexicon.jsonl.gz``)."""
    return Path(str(resources.files("medcorr").joinpath("data", "lexicon.jsonl.gz")))


@dataclass(frozen=True, eq=False)
class LexiconEntry:
    """One concept of the lexicon.

    ``terms`` are lower-case surface forms matched case-insensitively; ``acronyms`` are matched only as
    written (``COPD``, ``MRSA``). ``groups`` are the keys siblings are found by (``icd:J18``,
    ``blk:J09-J18``, ``mesh:C08.381.677``, ``cls:penicillin``, ``genus:neisseria``, ``proc:imaging`` ...).
    ``symptom`` marks signs and symptoms (ICD-10-CM chapter 18 / MeSH C23.888).
    """

    index: int
    kind: str
    id: str
    name: str
    terms: tuple[str, ...]
    acronyms: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    prominence: int = 0
    symptom: bool = False
    xrefs: Mapping[str, str] = field(default_factory=dict)

    def group_values(self, prefix: str) -> list[str]:
        """The values of this entry's groups of one type (``entry.group_values("icd")`` -> ``["J18"]``)."""
        head = prefix + ":"
        return [g[len(head):] for g in self.groups if g.startswith(head)]

    def __repr__(self) -> str:
        return f"LexiconEntry(kind={self.kind!r}, id={self.id!r}, name={self.name!r})"


class Lexicon:
    """The loaded lexicon: entries, a term index and sibling ranking.

    Build one with :meth:`load`; the default (packaged) instance is cached per process.
    """

    _default: "Lexicon | None" = None
    _default_lock = threading.Lock()

    def __init__(self, entries: Sequence[LexiconEntry], tokenized: Mapping[str, str] | None = None,
                 header: Mapping[str, Any] | None = None, path: Path | None = None) -> None:
        self.entries: tuple[LexiconEntry, ...] = tuple(entries)
        self.header: dict[str, Any] = dict(header or {})
        self.path = path
        #: term -> spaCy English tokens (space-joined) for terms not split by whitespace alone
        self.tokenized: dict[str, str] = dict(tokenized or {})
        self._by_key: dict[str, list[int]] = {}
        self._by_acronym: dict[str, list[int]] = {}
        for entry in self.entries:
            for term in entry.terms:
                bucket = self._by_key.setdefault(lookup_key(term), [])
                if not bucket or bucket[-1] != entry.index:
                    bucket.append(entry.index)
            for acronym in entry.acronyms:
                self._by_acronym.setdefault(acronym, []).append(entry.index)
        self._group_index: dict[str, list[int]] | None = None
        #: MeSH branch -> per member of ``_group_index[branch]`` (same order): the depths of its tree numbers
        #: under the branch; filled per branch on first use, like ``_name_keys``
        self._branch_depths: dict[str, list[tuple[int, ...]]] = {}
        self._index_lock = threading.Lock()
        self._name_keys: dict[int, tuple[str, frozenset[str]]] = {}  # entry index -> (name key, its words)
        self._sibling_cache: OrderedDict[tuple[str, str, int], tuple[str, ...]] = OrderedDict()

    # ----------------------------------------------------------------------------------------------- load
    @classmethod
    def load(cls, path: str | Path | None = None) -> "Lexicon":
        """Load a lexicon file; ``None`` loads the packaged one (cached, so repeated calls are free)."""
        if path is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls._read(default_lexicon_path())
                return cls._default
        return cls._read(Path(path))

    @classmethod
    def _read(cls, path: Path) -> "Lexicon":
        if not path.is_file():
            raise FileNotFoundError(
                f"lexicon file not found: {path} (build it with python -m medcorr.lexicon_build)"
            )
        entries: list[LexiconEntry] = []
        tokenized: dict[str, str] = {}
        with paused_gc(), gzip.open(path, "rt", encoding="utf-8") as handle:
            header = json.loads(handle.readline())
            if header.get("medcorr_lexicon") != 1:
                raise ValueError(f"{path} is not a medcorr lexicon file (format 1)")
            for line in handle:
                rec = json.loads(line)
                entries.append(
                    LexiconEntry(
                        index=len(entries),
                        kind=rec["k"],
                        id=rec["id"],
                        name=rec["n"],
                        terms=tuple(rec["t"]),
                        acronyms=tuple(rec.get("a", ())),
                        groups=tuple(rec.get("g", ())),
                        sources=tuple(rec.get("s", ())),
                        prominence=int(rec.get("p", 0)),
                        symptom=bool(rec.get("f", 0)),
                        xrefs=rec.get("x", {}),
                    )
                )
                if "tk" in rec:
                    tokenized.update(rec["tk"])
            return cls(entries, tokenized=tokenized, header=header, path=path)  # its term index too

    # --------------------------------------------------------------------------------------------- lookup
    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LexiconEntry]:
        return iter(self.entries)

    def iter_entries(self, kind: str | None = None) -> Iterator[LexiconEntry]:
        """All entries, or those of one kind, in file order."""
        _check_kind(kind)
        return (e for e in self.entries if kind is None or e.kind == kind)

    def counts(self) -> dict[str, int]:
        """Number of entries per kind."""
        out = {kind: 0 for kind in KINDS}
        for entry in self.entries:
            out[entry.kind] = out.get(entry.kind, 0) + 1
        return out

    def entries_for(self, text: str, kind: str | None = None) -> list[LexiconEntry]:
        """Entries that have ``text`` as a surface term (case-insensitive) or acronym (exact case).

        Ordered by kind (diagnosis, drug, organism, procedure), then prominence, then name.
        """
        _check_kind(kind)
        found: list[int] = []
        stripped = text.strip()
        for idx in self._by_acronym.get(stripped, ()):
            found.append(idx)
        for idx in self._by_key.get(lookup_key(text), ()):
            if idx not in found:
                found.append(idx)
        entries = [self.entries[i] for i in found if kind is None or self.entries[i].kind == kind]
        entries.sort(key=lambda e: (KINDS.index(e.kind), -e.prominence, e.name.lower(), e.index))
        return entries

    def kinds_of(self, text: str) -> list[str]:
        """The kinds ``text`` is known as, in :data:`KINDS` order."""
        kinds = {e.kind for e in self.entries_for(text)}
        return [k for k in KINDS if k in kinds]

    # ------------------------------------------------------------------------------------------- siblings
    def siblings(self, term: str, kind: str, limit: int = 10) -> list[str]:
        """Names of plausible alternatives to ``term`` of the same ``kind``, closest groups first.

        Returns ``[]`` when ``term`` is not a known ``kind`` term. The term's own concept, its synonyms and
        names that only add or drop words of it ("pancreatitis" for "acute pancreatitis") are excluded.
        Results are kept for the :data:`SIBLING_CACHE_SIZE` most recent ``(term, kind, limit)`` (clinical
        notes repeat their diagnoses and drugs; :meth:`clear_caches` empties it).
        """
        key = (term, kind, limit)
        with self._index_lock:
            cached = self._sibling_cache.get(key)
            if cached is not None:
                self._sibling_cache.move_to_end(key)
                return list(cached)
        names = tuple(entry.name for entry, _ in self.sibling_entries(term, kind, limit))
        with self._index_lock:
            self._sibling_cache[key] = names
            if len(self._sibling_cache) > SIBLING_CACHE_SIZE:
                self._sibling_cache.popitem(last=False)
        return list(names)

    @classmethod
    def clear_default_caches(cls) -> None:
        """:meth:`clear_caches` on the packaged lexicon, if it has been loaded (never loads it)."""
        if cls._default is not None:
            cls._default.clear_caches()

    def clear_caches(self) -> None:
        """Forget cached sibling lists (benchmarks call this so that repeated passes do not flatter them)."""
        with self._index_lock:
            self._sibling_cache.clear()

    def sibling_entries(self, term: str, kind: str, limit: int = 10) -> list[tuple[LexiconEntry, float]]:
        """Like :meth:`siblings`, with the entries and their closeness scores (higher is closer)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        sources = self.entries_for(term, kind)
        if not sources or limit <= 0:
            return []
        index = self._groups()
        source_ids = {e.index for e in sources}
        excluded_words = [set(lookup_key(term).split())] + [set(lookup_key(e.name).split()) for e in sources]
        excluded_keys = {lookup_key(term)} | {lookup_key(e.name) for e in sources}
        for entry in sources:
            excluded_keys.update(lookup_key(t) for t in entry.terms)
        allow_symptoms = any(e.symptom for e in sources)

        scores: dict[int, float] = {}
        for source in sources:
            for idx, score in self._scored_candidates(source, index).items():
                if score > scores.get(idx, 0.0):
                    scores[idx] = score

        ranked: list[tuple[tuple, LexiconEntry, float, frozenset[str]]] = []
        for idx, score in scores.items():
            entry = self.entries[idx]
            if idx in source_ids or entry.kind != kind or (entry.symptom and not allow_symptoms):
                continue
            key, words = self._name_key(idx)
            ranked.append(((-score, -entry.prominence, len(words), len(key), key, entry.index), entry, score, words))
        ranked.sort(key=lambda item: item[0])
        # the name filters run in rank order and stop at ``limit``: most candidates are never checked
        out: list[tuple[LexiconEntry, float]] = []
        seen: set[str] = set()
        for sort_key, entry, score, words in ranked:
            key = sort_key[4]
            if key in seen or key in excluded_keys or any(words <= ex or ex <= words for ex in excluded_words):
                continue
            seen.add(key)
            out.append((entry, score))
            if len(out) >= limit:
                break
        return out

    def _name_key(self, idx: int) -> tuple[str, frozenset[str]]:
        """``lookup_key`` of an entry's name and its word set, computed once per entry."""
        cached = self._name_keys.get(idx)
        if cached is None:
            key = lookup_key(self.entries[idx].name)
            cached = self._name_keys[idx] = (key, frozenset(key.split()))
        return cached

    def _scored_candidates(self, source: LexiconEntry, index: dict[str, list[int]]) -> dict[int, float]:
        """Candidate entry index -> best closeness score to ``source``."""
        weights = _GROUP_WEIGHTS.get(source.kind, {})
        parent_w, grand_w = _MESH_WEIGHTS.get(source.kind, (0.0, 0.0))
        best: dict[int, float] = {}
        kinds_of_evidence: dict[int, set[str]] = {}

        def offer(idx: int, score: float, evidence: str) -> None:
            if score > best.get(idx, 0.0):
                best[idx] = score
            kinds_of_evidence.setdefault(idx, set()).add(evidence)

        for group in source.groups:
            prefix, _, value = group.partition(":")
            if prefix == "mesh":
                if not parent_w:
                    continue
                segments = value.split(".")
                depth = len(segments)
                for drop, weight in ((1, parent_w), (2, grand_w)):
                    if depth - drop < _MIN_MESH_SEGMENTS:
                        continue
                    branch = "mesh:" + ".".join(segments[: depth - drop])
                    members = index.get(branch, ())
                    for idx, depths in zip(members, self._depths_under(branch, members)):
                        offer(idx, weight - 2.0 * _closest(depths, depth), "mesh")
            elif prefix in weights:
                for idx in index.get(group, ()):
                    offer(idx, weights[prefix], prefix)
        # agreement of several independent groupings (same block and same MeSH branch ...) adds a little
        return {idx: score + _AGREEMENT_BONUS * (len(kinds_of_evidence[idx]) - 1) for idx, score in best.items()}

    def _depths_under(self, branch: str, members: Sequence[int]) -> list[tuple[int, ...]]:
        """Per member of a MeSH ``branch``: the depths (segment counts) of its tree numbers under it."""
        cached = self._branch_depths.get(branch)
        if cached is None:
            cut = len(branch)
            cached = [
                tuple(sorted({group.count(".") + 1 for group in self.entries[idx].groups
                              if group.startswith(branch) and (len(group) == cut or group[cut] == ".")}))
                for idx in members
            ]
            self._branch_depths[branch] = cached
        return cached

    def _groups(self) -> dict[str, list[int]]:
        """Group key -> entry indices; MeSH tree numbers are indexed under every branch prefix."""
        if self._group_index is None:
            with self._index_lock, paused_gc():
                if self._group_index is None:
                    index: dict[str, list[int]] = {}
                    for entry in self.entries:
                        keys: set[str] = set()
                        for group in entry.groups:
                            if group.startswith("mesh:"):
                                segments = group[5:].split(".")
                                for n in range(_MIN_MESH_SEGMENTS, len(segments) + 1):
                                    keys.add("mesh:" + ".".join(segments[:n]))
                            elif not group.startswith("ch:"):
                                keys.add(group)
                        for key in keys:
                            index.setdefault(key, []).append(entry.index)
                    self._group_index = index
        return self._group_index

    # ------------------------------------------------------------------------------------------- patterns
    def surface_terms(self, kinds: Iterable[str] | None = None, include_symptoms: bool = False
                      ) -> Iterator[tuple[str, LexiconEntry]]:
        """``(lower-case term, entry)`` pairs for matching, optionally limited to kinds / non-symptoms."""
        wanted = set(kinds) if kinds is not None else set(KINDS)
        for kind in wanted:
            _check_kind(kind)
        for entry in self.entries:
            if entry.kind in wanted and (include_symptoms or not entry.symptom):
                for term in entry.terms:
                    yield term, entry

    def surface_acronyms(self, kinds: Iterable[str] | None = None, include_symptoms: bool = False
                         ) -> Iterator[tuple[str, LexiconEntry]]:
        """``(acronym, entry)`` pairs (case-sensitive forms) for matching."""
        wanted = set(kinds) if kinds is not None else set(KINDS)
        for entry in self.entries:
            if entry.kind in wanted and (include_symptoms or not entry.symptom):
                for acronym in entry.acronyms:
                    yield acronym, entry


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
