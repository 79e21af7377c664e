"""Build the compiled knowledge file of the evidence checks from the shipped lexicon and the curated tables.

    python -m medcorr.checks.build [--out medcorr/data/knowledge/knowledge.json.gz] [--lexicon PATH]

Inputs: ``medcorr/data/knowledge/curated/*.json`` (hand-curated tables, each with its provenance and licence)
and the shipped lexicon (``medcorr/data/lexicon.jsonl.gz``: DrugBank open-data drug names with medcorr's
drug classes, ICD-10-CM and MeSH diagnoses; see ``data/LEXICON_PROVENANCE.md``). Output: one gzip'd JSON
file that :class:`medcorr.checks.knowledge.Knowledge` reads at run time; the curated tables are copied into
it, and the derived tables (drug names and classes, sex-specific conditions, findings) are computed here.
The output is deterministic (sorted keys, fixed gzip mtime).
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from medcorr.checks.knowledge import default_knowledge_path
from medcorr.lexicon import Lexicon, LexiconEntry

FORMAT_VERSION = 1
CURATED_TABLES: tuple[str, ...] = ("allergy", "pregnancy", "duplication", "sex_specific", "laterality", "findings",
                                   "scope")
_TERM_OK = re.compile(r"^[a-z][a-z0-9 '\-/().,+]*$")


def knowledge_dir() -> Path:
    """``medcorr/data/knowledge`` of the installed package."""
    return Path(str(resources.files("medcorr").joinpath("data", "knowledge")))


def read_curated(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The curated tables by name (``allergy``, ``pregnancy`` ...)."""
    directory = directory or knowledge_dir() / "curated"
    return {name: json.loads((directory / f"{name}.json").read_text(encoding="utf-8")) for name in CURATED_TABLES}


def _usable(term: str) -> bool:
    """A drug surface form worth matching: plain lower-case text, 4+ characters, at most 5 words."""
    return len(term) >= 4 and bool(_TERM_OK.match(term)) and len(term.split()) <= 5


def build_drugs(lexicon: Lexicon) -> dict[str, dict[str, Any]]:
    """Drug name -> {"classes": [...], "terms": [...]} for every lexicon drug (its medcorr class groups)."""
    drugs: dict[str, dict[str, Any]] = {}
    for entry in lexicon.iter_entries("drug"):
        name = entry.name.lower()
        record = drugs.setdefault(name, {"classes": set(), "terms": set()})
        record["classes"].update(entry.group_values("cls"))
        record["terms"].update(t for t in (name, *entry.terms) if _usable(t))
        record["terms"].update(a.lower() for a in entry.acronyms if len(a) >= 3 and a.isalnum())
    return {name: {"classes": sorted(r["classes"]), "terms": sorted(r["terms"])}
            for name, r in sorted(drugs.items()) if r["terms"]}


def _in_ranges(code: str, ranges: Sequence[Sequence[str]]) -> bool:
    head = code[:3].upper()
    return any(low <= head <= high for low, high in ranges)


def _sex_of_entry(entry: LexiconEntry, table: dict[str, Any]) -> tuple[str, bool] | None:
    """(sex, obstetric) when a diagnosis entry is specific to one sex by its ICD-10-CM codes or MeSH trees."""
    icd = entry.group_values("icd")
    mesh = entry.group_values("mesh")
    sexes_icd = set()
    for code in icd:
        hit = [sex for sex, ranges in table["icd_ranges"].items() if _in_ranges(code, ranges)]
        sexes_icd.add(hit[0] if hit else None)
    sexes_mesh = set()
    for tree in mesh:
        if any(tree.startswith(p) for p in table["mesh_neutral_prefixes"]):
            continue
        hit = [sex for sex, branches in table["mesh_branches"].items() if any(tree.startswith(b) for b in branches)]
        sexes_mesh.add(hit[0] if hit else None)
    sexes = sexes_icd | sexes_mesh
    if len(sexes) != 1 or None in sexes:
        return None
    sex = next(iter(sexes))
    if not sexes_mesh:  # ICD only: the cleaned description must itself name a sex-specific organ or event
        words = " ".join(entry.terms)
        if not any(stem in words for stem in table["stems"][sex]):
            return None
    obstetric = any(c.upper().startswith(tuple(table["obstetric_icd"])) for c in icd) or any(
        t.startswith(tuple(table["obstetric_mesh"])) for t in mesh)
    return sex, obstetric


def build_sex_specific(lexicon: Lexicon, table: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """sex -> [[term, kind, obstetric], ...]: lexicon conditions plus the curated conditions, tests,
    procedures and organs. ``kind`` is condition / management / treatment / anatomy."""
    drop = {t.lower() for t in table["drop_terms"]}
    out: dict[str, dict[str, tuple[str, bool]]] = {"female": {}, "male": {}}
    for entry in lexicon.iter_entries("diagnosis"):
        found = _sex_of_entry(entry, table)
        if found is None:
            continue
        sex, obstetric = found
        for term in entry.terms:
            if term not in drop and _usable(term):
                out[sex].setdefault(term, ("condition", obstetric))
    for sex, kinds in table["curated"].items():
        for kind, terms in kinds.items():
            for term in terms:
                obstetric = any(stem in term.lower() for stem in table["obstetric_stems"])
                out[sex][term.lower()] = (kind, obstetric)
    for sex, terms in table["anatomy"].items():
        for term in terms:
            out[sex].setdefault(term.lower(), ("anatomy", False))
    both = set(out["female"]) & set(out["male"])
    return {sex: [[term, kind, obstetric] for term, (kind, obstetric) in sorted(items.items()) if term not in both]
            for sex, items in out.items()}


def build_findings(lexicon: Lexicon, table: dict[str, Any]) -> dict[str, str]:
    """Finding surface form -> canonical name: lexicon signs and symptoms plus the curated findings."""
    drop = {t.lower() for t in table["drop_terms"]}
    findings: dict[str, str] = {}
    for entry in lexicon.iter_entries("diagnosis"):
        if not entry.symptom:
            continue
        for term in entry.terms:
            if term not in drop and _usable(term) and len(term.split()) <= 4:
                findings.setdefault(term, entry.name.lower())
    for term in table["curated"]:
        findings[term.lower()] = findings.get(term.lower(), term.lower())
    return dict(sorted(findings.items()))


def build(out: Path | None = None, lexicon_path: Path | None = None, curated_dir: Path | None = None) -> dict[str, int]:
    """Write the compiled knowledge file; returns the counts written."""
    out = out or default_knowledge_path()
    lexicon = Lexicon.load(lexicon_path)
    curated = read_curated(curated_dir)
    drugs = build_drugs(lexicon)
    sex = build_sex_specific(lexicon, curated["sex_specific"])
    findings = build_findings(lexicon, curated["findings"])
    data = {
        "medcorr_knowledge": FORMAT_VERSION,
        "built_from": {"lexicon": dict(lexicon.header.get("sources", {})) if isinstance(
            lexicon.header.get("sources"), dict) else lexicon.header.get("sources", [])},
        "drugs": drugs,
        "sex_terms": sex,
        "finding_terms": findings,
        **{name: table for name, table in curated.items()},
    }
    payload = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as handle:
        handle.write(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return {"drugs": len(drugs), "drug_terms": sum(len(d["terms"]) for d in drugs.values()),
            "female_terms": len(sex["female"]), "male_terms": len(sex["male"]), "finding_terms": len(findings),
            "bytes": len(buffer.getvalue())}


def main(argv: Iterable[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="Build medcorr's evidence-check knowledge file.")
    parser.add_argument("--out", type=Path, default=None, help="output file (default: the packaged one)")
    parser.add_argument("--lexicon", type=Path, default=None, help="lexicon file (default: the packaged one)")
    parser.add_argument("--curated", type=Path, default=None, help="directory of the curated tables")
    args = parser.parse_args(list(argv) if argv is not None else None)
    counts = build(args.out, args.lexicon, args.curated)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
