"""The evidence checks' knowledge: the compiled tables, a site's additions, and one term index over them.

The packaged file ``medcorr/data/knowledge/knowledge.json.gz`` is built by ``python -m medcorr.checks.build``
(sources and licences: ``medcorr/data/knowledge/PROVENANCE.md``). A site adds or overrides entries with a
JSON file of its own (``extra_knowledge``), whose sections are merged into the tables::

    {
      "drugs": {"zosyn": {"classes": ["penicillin"], "terms": ["zosyn", "pip-tazo"]}},
      "allergy": {"groups": {"iodinated_contrast": {"label": "contrast", "drugs": ["iohexol"],
                                                     "allergen_terms": ["contrast", "iodine"], "within": "full"}},
                  "fire_levels": ["full", "partial"]},
      "pregnancy": {"drugs": {"misoprostol": "site policy: flag outside the obstetric service"},
                    "classes": {"fluoroquinolone": "site policy"}},
      "duplication": {"classes": ["opioid"]},
      "sex_terms": {"female": [["vulvodynia", "condition", false]]},
      "finding_terms": {"hot flushes": "hot flashes"},
      "laterality": {"body_parts": {"hand": ["hand", "metacarpal"]}},
      "remove": {"drugs": ["dapsone"], "pregnancy.drugs": ["testosterone"], "sex_terms": ["circumcision"]}
    }

Merging rule: a mapping merges key by key (a site's value replaces the packaged value of the same key, and
nested mappings such as ``allergy.groups`` merge one level down); a list is extended (duplicates dropped),
except ``fire_levels`` which is replaced. ``remove`` deletes keys (``"drugs"``, ``"pregnancy.drugs"``,
``"allergy.groups"`` ...) or sex-specific / finding terms. A drug named in ``drugs`` needs no lexicon
entry: its ``terms`` are what the note is matched against.
"""
from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from importlib import resources

__all__ = ["Knowledge", "Mention", "TermIndex", "default_knowledge_path", "words_of"]

WORD = re.compile(r"[A-Za-z0-9]+")
_LOCK = threading.Lock()
_DEFAULT: "Knowledge | None" = None


def words_of(text: str) -> tuple[str, ...]:
    """The lower-case alphanumeric words of ``text`` (how terms and notes are compared)."""
    return tuple(w.lower() for w in WORD.findall(text))


@dataclass(frozen=True)
class Mention:
    """A matched term: its label (``drug``, ``allergen``, ``sex``, ``finding``, ``body``, ``pregnancy``), the
    payload it maps to, its character span and its word span in the note."""

    label: str
    value: Any
    start: int
    end: int
    first_word: int
    last_word: int


class TermIndex:
    """Multi-word term look-up over a note's words: longest match per label at each word position."""

    def __init__(self) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], str, Any]]] = {}
        self.max_words = 1

    def add(self, term: str, label: str, value: Any) -> None:
        """Index ``term`` (any casing / punctuation) under ``label``."""
        words = words_of(term)
        if not words:
            return
        bucket = self._by_first.setdefault(words[0], [])
        if any(w == words and lab == label for w, lab, _ in bucket):
            return
        bucket.append((words, label, value))
        bucket.sort(key=lambda item: -len(item[0]))
        self.max_words = max(self.max_words, len(words))

    def __len__(self) -> int:
        return sum(len(b) for b in self._by_first.values())

    def find(self, words: list[str], starts: list[int], ends: list[int]) -> list[Mention]:
        """Mentions in a note given its words (lower case) and their character offsets."""
        found: list[Mention] = []
        covered: dict[str, int] = {}  # label -> first word index not covered by its last match
        n = len(words)
        for i, word in enumerate(words):
            bucket = self._by_first.get(word)
            if not bucket:
                continue
            for term_words, label, value in bucket:
                if covered.get(label, 0) > i:
                    continue
                k = len(term_words)
                if k > 1 and (i + k > n or tuple(words[i:i + k]) != term_words):
                    continue
                found.append(Mention(label, value, starts[i], ends[i + k - 1], i, i + k - 1))
                covered[label] = i + k
        return found


def _merge(base: Any, extra: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for k, v in extra.items():
            if k in merged and isinstance(merged[k], dict) and isinstance(v, dict) and key in ("", "allergy",
                                                                                                "pregnancy",
                                                                                                "laterality"):
                merged[k] = _merge(merged[k], v, k)
            elif k in merged and isinstance(merged[k], list) and isinstance(v, list) and k != "fire_levels":
                merged[k] = merged[k] + [x for x in v if x not in merged[k]]
            else:
                merged[k] = v
        return merged
    return extra


class Knowledge:
    """All tables of the checks, merged with a site file, and the term index built from them."""

    def __init__(self, tables: Mapping[str, Any], source: str = "packaged") -> None:
        self.tables: dict[str, Any] = dict(tables)
        self.source = source
        t = self.tables
        self.drugs: dict[str, dict[str, Any]] = t["drugs"]
        self.allergy: dict[str, Any] = t["allergy"]
        self.pregnancy: dict[str, Any] = t["pregnancy"]
        self.duplication: dict[str, Any] = t["duplication"]
        self.sex_specific: dict[str, Any] = t["sex_specific"]
        self.sex_terms: dict[str, list[list[Any]]] = t["sex_terms"]
        self.laterality: dict[str, Any] = t["laterality"]
        self.findings: dict[str, str] = t["finding_terms"]
        self.scope: dict[str, Any] = t["scope"]
        self._derive()

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, extra: str | Path | Mapping[str, Any] | None = None, path: str | Path | None = None) -> "Knowledge":
        """The packaged knowledge (cached) or ``path``, merged with ``extra`` (a site file or a mapping)."""
        global _DEFAULT
        if path is None and not extra:
            with _LOCK:
                if _DEFAULT is None:
                    _DEFAULT = cls(_read(default_knowledge_path()))
                return _DEFAULT
        tables = _read(Path(path) if path else default_knowledge_path())
        source = "packaged"
        if extra:
            if isinstance(extra, Mapping):
                site = dict(extra)
                source = "packaged + site mapping"
            else:
                site = json.loads(Path(extra).read_text(encoding="utf-8"))
                source = f"packaged + {Path(extra).name}"
            if not isinstance(site, dict):
                raise ValueError("extra knowledge must be a JSON object")
            tables = _apply_site(tables, site)
        return cls(tables, source)

    # ------------------------------------------------------------------------------------------ derived
    def _derive(self) -> None:
        index = TermIndex()
        self.drug_classes: dict[str, frozenset[str]] = {}
        for name, record in self.drugs.items():
            self.drug_classes[name] = frozenset(record.get("classes", ()))
            for term in (name, *record.get("terms", ())):
                index.add(term, "drug", name)
        groups = self.allergy.get("groups", {})
        for group, spec in groups.items():
            for term in spec.get("allergen_terms", ()):
                index.add(term, "allergen", group)
        for term in self.pregnancy.get("pregnancy_terms", ()):
            index.add(term, "pregnancy", term)
        for sex, items in self.sex_terms.items():
            for term, kind, obstetric in items:
                index.add(term, "sex", (sex, kind, bool(obstetric), term))
        for term, canonical in self.findings.items():
            index.add(term, "finding", canonical)
        for part, terms in self.laterality.get("body_parts", {}).items():
            for term in terms:
                index.add(term, "body", part)
        self.index = index
        # drug -> allergy groups it belongs to (full members) and groups where it is a partial member
        self.group_members: dict[str, set[str]] = {}
        self.group_partial: dict[str, set[str]] = {}
        for group, spec in groups.items():
            classes = set(spec.get("classes", ()))
            exclude = set(spec.get("exclude", ()))
            members = {d for d, cls in self.drug_classes.items() if cls & classes}
            members |= {d for d in spec.get("drugs", ()) if d in self.drug_classes}
            self.group_members[group] = members - exclude
            self.group_partial[group] = {d for d in spec.get("partial_drugs", ()) if d in self.drug_classes}
        self.drug_groups: dict[str, set[str]] = {}
        for group, members in self.group_members.items():
            for drug in members:
                self.drug_groups.setdefault(drug, set()).add(group)
        preg_classes = set(self.pregnancy.get("classes", {}))
        preg_exclude = set(self.pregnancy.get("class_exclude", ()))
        self.pregnancy_drugs: dict[str, str] = {}
        for drug, cls in self.drug_classes.items():
            hit = sorted(cls & preg_classes)
            if hit and drug not in preg_exclude:
                self.pregnancy_drugs[drug] = f"{hit[0].replace('_', ' ')}: {self.pregnancy['classes'][hit[0]]}"
        for drug, basis in self.pregnancy.get("drugs", {}).items():
            if basis is None:
                self.pregnancy_drugs.pop(drug, None)
            elif drug in self.drug_classes:
                self.pregnancy_drugs[drug] = basis
        dup = set(self.duplication.get("classes", ()))
        dup_exclude = set(self.duplication.get("exclude_drugs", ()))
        self.duplicate_classes: dict[str, frozenset[str]] = {
            drug: frozenset(cls & dup) for drug, cls in self.drug_classes.items()
            if cls & dup and drug not in dup_exclude}
        self.patterns = {name: _phrase_regex(self.scope.get(name, ())) for name in (
            "negation_pre", "negation_post", "family", "hypothetical", "historical", "stopped", "terminators")}
        self.patterns["allergy_cue"] = _phrase_regex(self.allergy.get("cues", ()))
        self.patterns["duplication_cue"] = _phrase_regex(self.duplication.get("cues", ()))
        self.patterns["not_together"] = _phrase_regex(self.duplication.get("separators_not_together", ()))
        self.patterns["not_pregnant"] = _phrase_regex(self.pregnancy.get("not_pregnant_cues", ()))
        self.patterns["transgender"] = _phrase_regex(self.sex_specific.get("transgender_cues", ()))
        self.patterns["laterality_sentence"] = _phrase_regex(self.laterality.get("sentence_cues", ()))
        self.patterns["laterality_local"] = _phrase_regex(self.laterality.get("local_cues", ()))

    def coverage(self) -> dict[str, Any]:
        """What the tables hold (counts), for :meth:`EvidenceChecks.coverage`."""
        classed = [d for d, c in self.drug_classes.items() if c]
        sex_counts = {sex: {} for sex in self.sex_terms}
        for sex, items in self.sex_terms.items():
            for _, kind, _ in items:
                sex_counts[sex][kind] = sex_counts[sex].get(kind, 0) + 1
        return {
            "source": self.source,
            "drugs": len(self.drugs),
            "drugs_with_class": len(classed),
            "drug_classes": len({c for cs in self.drug_classes.values() for c in cs}),
            "allergy_groups": len(self.group_members),
            "allergy_group_drugs": {g: len(m) for g, m in sorted(self.group_members.items())},
            "allergy_fire_levels": list(self.allergy.get("fire_levels", ["full"])),
            "pregnancy_contraindicated_drugs": len(self.pregnancy_drugs),
            "duplication_classes": len(set(self.duplication.get("classes", ()))),
            "duplication_drugs": len(self.duplicate_classes),
            "sex_specific_terms": sex_counts,
            "laterality_body_parts": len(self.laterality.get("body_parts", {})),
            "laterality_terms": sum(len(v) for v in self.laterality.get("body_parts", {}).values()),
            "finding_terms": len(self.findings),
            "finding_concepts": len(set(self.findings.values())),
        }


def default_knowledge_path() -> Path:
    """The compiled knowledge file shipped in the package (``medcorr/data/knowledge/knowledge.json.gz``)."""
    return Path(str(resources.files("medcorr").joinpath("data", "knowledge", "knowledge.json.gz")))


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str]:
    """One regex over space-joined lower-case words that finds any of ``phrases`` as whole words."""
    parts = sorted({" ".join(words_of(p)) for p in phrases if words_of(p)}, key=len, reverse=True)
    if not parts:
        return re.compile(r"(?!x)x")
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in parts) + r")\b")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"knowledge file not found: {path} (build it with python -m medcorr.checks.build)")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("medcorr_knowledge") != 1:
        raise ValueError(f"{path} is not a medcorr knowledge file (format 1)")
    return data


def _apply_site(tables: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    tables = dict(tables)
    removals = site.pop("remove", {}) or {}
    for key, value in site.items():
        if key not in tables:
            raise ValueError(f"unknown knowledge section {key!r} (known: {', '.join(sorted(tables))})")
        if key == "sex_terms":
            merged = {sex: list(items) for sex, items in tables[key].items()}
            for sex, items in value.items():
                known = {item[0] for item in merged.setdefault(sex, [])}
                merged[sex] += [[str(t).lower(), k, bool(o)] for t, k, o in items if str(t).lower() not in known]
            tables[key] = merged
        elif key == "drugs":
            drugs = dict(tables[key])
            for name, record in value.items():
                record = {"classes": list(record.get("classes", ())), "terms": [t.lower() for t in record.get("terms", ())]}
                drugs[name.lower()] = record
            tables[key] = drugs
        else:
            tables[key] = _merge(tables[key], value, key)
    for path, names in removals.items():
        head, _, sub = path.partition(".")
        if head == "sex_terms":
            drop = {n.lower() for n in names}
            tables[head] = {sex: [i for i in items if i[0] not in drop] for sex, items in tables[head].items()}
            continue
        if head == "finding_terms":
            tables[head] = {k: v for k, v in tables[head].items() if k not in names and v not in names}
            continue
        target = tables[head] if not sub else tables[head].get(sub, {})
        if isinstance(target, dict):
            target = {k: v for k, v in target.items() if k not in names}
        else:
            target = [v for v in target if v not in names]
        if sub:
            tables[head] = {**tables[head], sub: target}
        else:
            tables[head] = target
    return tables
