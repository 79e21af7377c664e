"""Tests of the example bank (medcorr.verifiers.bank): the shipped MEDEC-MS bank, retrieval rules, the
embedding graph, and a user's own bank. Only the tests marked ``medec`` need ../shared."""
from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from medcorr.detector import default_model_dir
from medcorr.finding import ErrorType
from medcorr.verifiers import bank as bank_module
from medcorr.verifiers.bank import (
    EMBED_FILE,
    HIDDEN_STATE,
    BankError,
    ExampleBank,
    NoteEmbedder,
    SolvedExample,
    default_bank_dir,
)

FIXTURES = Path(__file__).parent / "fixtures"
USER_CSV = FIXTURES / "example_bank.csv"
MEDEC = Path(__file__).resolve().parents[2] / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"

ASTHMA = (
    "A 9-year-old boy is brought to the physician because of episodes of wheezing and shortness of breath that "
    "occur at night and after playing soccer. His mother has allergic rhinitis. Expiratory wheezes are heard "
    "bilaterally. Spirometry shows an FEV1:FVC ratio of 65% that improves after albuterol inhalation. He is "
    "diagnosed with asthma."
)
HIV = (
    "A 38-year-old man with HIV infection comes to the physician because of fever, cough and progressive "
    "shortness of breath for 2 weeks. He has not taken his antiretroviral therapy for a year. His CD4+ "
    "T-lymphocyte count is 90/mm3. Chest x-ray shows bilateral diffuse interstitial infiltrates. He is started "
    "on trimethoprim-sulfamethoxazole."
)


@pytest.fixture(scope="module")
def shipped() -> ExampleBank:
    return ExampleBank.load()


@pytest.fixture(autouse=True)
def bank_cache(tmp_path, monkeypatch) -> Path:
    """Every test caches user-bank embeddings in its own directory, never in the user's home."""
    directory = tmp_path / "bank-cache"
    monkeypatch.setenv(bank_module.BANK_CACHE_ENV, str(directory))
    return directory


def _jaccard(a: str, b: str) -> float:
    """Word-trigram Jaccard, as the bank's near-duplicate rule defines it."""
    first, second = bank_module._shingles(a), bank_module._shingles(b)
    return len(first & second) / len(first | second)


def _twin_group(bank: ExampleBank) -> list[int]:
    """The indices of the first near-duplicate group of two that pairs an error note with a clean one."""
    by_group: dict[int, list[int]] = {}
    for index, group in enumerate(bank._groups.tolist()):
        by_group.setdefault(group, []).append(index)
    for members in by_group.values():
        if len(members) == 2 and sorted(bank.examples[i].has_error for i in members) == [False, True]:
            return members
    raise AssertionError("no error/clean twin pair in the bank")


# ------------------------------------------------------------------------------------ shipped bank


def test_shipped_bank_loads_with_attribution(shipped):
    assert len(shipped) == 574
    assert sum(e.has_error for e in shipped.examples) == 319
    assert "MEDEC" in shipped.provenance and "CC BY 4.0" in shipped.provenance
    provenance = (default_bank_dir() / "PROVENANCE.md").read_text(encoding="utf-8")
    for needed in ("MEDEC: A Benchmark for Medical Error Detection and Correction in Clinical Notes",
                   "Asma Ben Abacha", "https://github.com/abachaa/MEDEC", "CC BY 4.0",
                   "sentences as published; embeddings computed by medcorr"):
        assert needed in provenance
    header = json.loads((default_bank_dir() / "bank.json").read_text(encoding="utf-8"))
    assert header["embedding"]["model_version"] and header["embedding"]["recipe"]
    stored = np.load(default_bank_dir() / "embeddings.npy")
    assert stored.dtype == np.float16 and stored.shape == (574, 384)


def test_shipped_examples_are_well_formed(shipped):
    for example in shipped.examples:
        assert example.sentences and all(isinstance(s, str) for s in example.sentences)
        assert example.text() == " ".join(example.sentences)
        if example.has_error:
            assert 0 <= example.error_sentence < len(example.sentences)
            assert isinstance(example.error_type, ErrorType) and example.corrected_sentence
        else:
            assert example.error_sentence == -1 and example.error_type is None
            assert example.corrected_sentence is None
    assert {e.error_type for e in shipped.examples if e.has_error} == set(ErrorType)


def test_shipped_embeddings_match_the_shipped_encoder(shipped):
    """The bank was embedded with the shipped encoder as it is now (a stale bank fails here)."""
    header = json.loads((default_bank_dir() / "bank.json").read_text(encoding="utf-8"))
    encoder = shipped.encoder
    assert header["embedding"]["fingerprint"] == encoder.fingerprint
    stored = np.load(default_bank_dir() / "embeddings.npy").astype(np.float32)
    for index in (0, 101, 573):
        fresh = encoder.embed(shipped.examples[index].text())
        assert abs(float(np.linalg.norm(fresh)) - 1.0) < 1e-5
        assert float(stored[index] @ fresh) > 0.999


def test_embedding_is_the_mean_of_the_detector_hidden_state():
    """The embedding graph computes exactly the mean of the detector graph's final hidden state."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    model_dir = default_model_dir()
    model = onnx.load(str(model_dir / "model.unpadded.onnx"), load_external_data=False)
    model.graph.output.append(onnx.helper.make_tensor_value_info(HIDDEN_STATE, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(model_dir))
    detector = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    embedder = NoteEmbedder()
    ids = embedder.input_ids(ASTHMA)
    assert ids.shape[0] == 1 and ids[0, 0] == embedder.encoder.cls_id and ids[0, -1] == embedder.encoder.sep_id
    hidden = detector.run([HIDDEN_STATE], {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                           "segment_mask": np.full((1, 1, ids.shape[1]), 1.0 / ids.shape[1],
                                                                   dtype=np.float32)})[0]
    assert hidden.shape == (1, ids.shape[1], 384)
    expected = hidden[0].mean(axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(embedder.embed(ASTHMA), expected, atol=2e-3)


def test_shipped_embedding_graph_is_the_derived_one():
    """model.embed.onnx is what build_embedding_graph derives from the shipped detector graph, and
    onnxruntime loads it from the model directory (weights from model.data there)."""
    pytest.importorskip("onnx")
    import onnxruntime as ort

    model_dir = default_model_dir()
    shipped_graph = (model_dir / EMBED_FILE).read_bytes()
    assert shipped_graph == bank_module.build_embedding_graph(model_dir / "model.unpadded.onnx")
    assert len(shipped_graph) < 1_000_000
    session = ort.InferenceSession(str(model_dir / EMBED_FILE), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids"]


def test_long_note_uses_the_first_window():
    embedder = NoteEmbedder()
    long_note = " ".join([ASTHMA] * 40)
    ids = embedder.input_ids(long_note)
    assert ids.shape == (1, embedder.max_length)
    assert embedder.embed(long_note).shape == (384,)


# ----------------------------------------------------------------------------------------- retrieval


def test_nearest_never_returns_the_note_or_its_twin(shipped):
    first, second = _twin_group(shipped)
    group = {shipped.examples[first].example_id, shipped.examples[second].example_id}
    error_index = first if shipped.examples[first].has_error else second
    error_note = shipped.examples[error_index]
    corrected = list(error_note.sentences)
    corrected[error_note.error_sentence] = error_note.corrected_sentence
    for query in (shipped.examples[first].text(), shipped.examples[second].text(), " ".join(corrected)):
        returned = {e.example_id for e in shipped.nearest(query, 4)}
        assert len(returned) == 4 and not returned & group
        everything = {e.example_id for e in shipped.nearest(query, len(shipped), balance=False)}
        assert everything == {e.example_id for e in shipped.examples} - group


def test_group_of_an_excluded_entry_is_excluded_too():
    """A query that is a near duplicate of one member of a group excludes the whole group, even the
    members it does not resemble."""
    texts = ["the patient has a cough and a fever and is given amoxicillin for seven days today",
             "an entirely different note about a broken wrist that is set in a cast by the surgeon",
             "a third note about thyroid disease treated with levothyroxine every morning at home"]
    examples = [SolvedExample(f"g-{i}", (text,), False, None, -1, None) for i, text in enumerate(texts)]
    bank = ExampleBank(examples, np.full((3, 4), 0.5, dtype=np.float32), "test", encoder=_ConstantEmbedder(),
                       embedding_fingerprint="constant", groups=[7, 7, 9])
    query = texts[0].replace("seven", "ten")
    assert _jaccard(query, texts[0]) > 0.5 and _jaccard(query, texts[1]) == 0.0
    assert bank.excluded(query).tolist() == [True, True, False]
    assert [e.example_id for e in bank.nearest(query, 3, balance=False)] == ["g-2"]
    assert bank.excluded("nothing like any of them at all here").tolist() == [False, False, False]


def test_retrieval_is_topical_for_handwritten_notes(shipped):
    """Hand-written vignettes (not in the bank) get bank notes of their topic: at least 2 of the top 4
    mention it, where 25 (asthma) and 20 (HIV) of the 574 bank notes do."""
    for query, word in ((ASTHMA, "asthma"), (HIV, "HIV")):
        on_topic = sum(bool(re.search(word, e.text())) for e in shipped.nearest(query, 4))
        assert on_topic >= 2, word
        assert sum(bool(re.search(word, e.text())) for e in shipped.examples) <= 25


def test_balance_and_order(shipped):
    for k in (1, 2, 4, 5, 10):
        scored = shipped.nearest_scored(ASTHMA, k)
        assert len(scored) == k
        assert sum(e.has_error for e, _ in scored) == -(-k // 2)
        similarities = [s for _, s in scored]
        assert similarities == sorted(similarities, reverse=True)
    ranking = shipped.nearest(ASTHMA, len(shipped), balance=False)
    assert shipped.nearest(ASTHMA, 10, balance=False) == ranking[:10]
    # balanced: the 5 nearest error notes and the 5 nearest clean ones, in similarity order
    expected = {e.example_id for e in [e for e in ranking if e.has_error][:5] + [e for e in ranking if not e.has_error][:5]}
    balanced = shipped.nearest(ASTHMA, 10)
    assert {e.example_id for e in balanced} == expected
    assert balanced == [e for e in ranking if e.example_id in expected]
    assert shipped.nearest(ASTHMA, 0) == []


def test_balance_fills_from_the_other_kind_when_one_runs_short():
    bank = ExampleBank.from_medec_csv(USER_CSV)  # 3 error notes, 4 clean ones
    picked = bank.nearest("A man has a sore throat and fever.", 7)
    assert len(picked) == 7 and sum(e.has_error for e in picked) == 3
    picked = bank.nearest("A man has a sore throat and fever.", 6)
    assert sum(e.has_error for e in picked) == 3


def test_retrieval_is_deterministic(shipped):
    first = [e.example_id for e in shipped.nearest(HIV, 8)]
    again = [e.example_id for e in ExampleBank.load().nearest(HIV, 8)]
    assert first == again == [e.example_id for e in shipped.nearest(HIV, 8)]


class _ConstantEmbedder(NoteEmbedder):
    """An embedder that gives every note the same vector (no model), to pin the tie-breaking."""

    def __init__(self) -> None:  # noqa: D107 - no model directory needed
        self._fingerprint = "constant"

    def embed(self, text: str) -> np.ndarray:
        return np.ones(4, dtype=np.float32) / 2.0


def test_ties_are_broken_by_example_id():
    examples = [SolvedExample(f"n-{i}", (f"note number {i} says {i}.",), i % 2 == 0,
                              ErrorType.DIAGNOSIS if i % 2 == 0 else None, 0 if i % 2 == 0 else -1,
                              "fixed." if i % 2 == 0 else None) for i in (5, 3, 9, 1, 7, 2)]
    bank = ExampleBank(examples, np.full((6, 4), 0.5, dtype=np.float32), "test", encoder=_ConstantEmbedder(),
                       embedding_fingerprint="constant")
    assert [e.example_id for e in bank.nearest("a query", 6, balance=False)] == [
        "n-1", "n-2", "n-3", "n-5", "n-7", "n-9"]
    assert [e.example_id for e in bank.nearest("a query", 2)] == ["n-1", "n-2"]


# ----------------------------------------------------------------------------------------- user bank


def test_user_bank_from_a_medec_csv(bank_cache):
    bank = ExampleBank.from_medec_csv(USER_CSV)
    assert len(bank) == 7 and "example_bank.csv" in bank.provenance
    eb1 = bank.examples[0]
    assert eb1.example_id == "eb-1" and eb1.has_error and eb1.error_type is ErrorType.PHARMACOTHERAPY
    assert eb1.error_sentence == 3 and "vancomycin" in eb1.sentences[3]
    assert eb1.corrected_sentence == "She is treated with oral nitrofurantoin for five days."
    assert bank.examples[4].error_type is ErrorType.CAUSAL_ORGANISM
    assert not bank.examples[1].has_error and bank.examples[1].error_sentence == -1
    # a note about a urinary infection finds neither eb-1 nor its twin when it is eb-1, and finds them otherwise
    assert {e.example_id for e in bank.nearest(eb1.text(), 7, balance=False)} == {f"eb-{i}" for i in range(3, 8)}
    uti = "An 80-year-old woman has burning on urination. Her urine culture grows Escherichia coli."
    assert {"eb-1", "eb-2"} & {e.example_id for e in bank.nearest(uti, 2, balance=False)}
    # the embeddings were cached under the CSV's hash and are used by the next bank of that CSV
    cached = list(bank_cache.glob("*.npy"))
    assert len(cached) == 1 and np.load(cached[0]).shape == (7, 384)
    again = ExampleBank.from_medec_csv(USER_CSV, encoder=bank.encoder)
    again.encoder.embed_many = None  # type: ignore[method-assign]  # embedding the bank again would fail
    np.testing.assert_array_equal(again.embeddings, bank.embeddings)


def test_user_bank_embeddings_match_the_shipped_encoder():
    bank = ExampleBank.from_medec_csv(USER_CSV)
    fresh = NoteEmbedder().embed(bank.examples[5].text())
    assert float(bank.embeddings[5] @ fresh) > 0.999


def test_csv_without_labels_is_a_clear_error():
    with pytest.raises(BankError, match="Error Flag"):
        ExampleBank.from_medec_csv(FIXTURES / "medec" / "unlabeled.csv")


def test_csv_with_an_unlabelled_row_is_a_clear_error(tmp_path):
    text = USER_CSV.read_text(encoding="utf-8")
    flag = 'inhaled corticosteroid.",0,NA,-1'  # eb-6's flag cell
    assert text.count(flag) == 1
    broken = tmp_path / "broken.csv"
    broken.write_text(text.replace(flag, 'inhaled corticosteroid.",,NA,-1'), encoding="utf-8")
    with pytest.raises(BankError, match=r"row \d+: 'Error Flag'"):
        ExampleBank.from_medec_csv(broken)


def test_build_command_writes_a_loadable_bank(tmp_path):
    out = tmp_path / "bank"
    assert bank_module.main(["build", "--medec", str(USER_CSV), "--out", str(out), "--keep-graph"]) == 0
    header = json.loads((out / "bank.json").read_text(encoding="utf-8"))
    assert header["count"] == 7 and header["embedding"]["fingerprint"] == NoteEmbedder().fingerprint
    with gzip.open(out / "examples.jsonl.gz", "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert rows[0]["group"] == rows[1]["group"] != rows[2]["group"]
    loaded = ExampleBank.load(out)
    assert [e.example_id for e in loaded.examples] == [f"eb-{i}" for i in range(1, 8)]
    assert {e.example_id for e in loaded.nearest(loaded.examples[2].text(), 7, balance=False)} == {
        "eb-1", "eb-2", "eb-5", "eb-6", "eb-7"}


# ------------------------------------------------------------------------------ a model directory


def _model_copy_without_graph(tmp_path: Path) -> Path:
    source = default_model_dir()
    target = tmp_path / "model"
    target.mkdir()
    for path in source.iterdir():
        if path.name != EMBED_FILE:
            shutil.copyfile(path, target / path.name)  # copies: onnxruntime rejects weights behind a link
    return target


def test_model_directory_without_the_graph_derives_it(tmp_path):
    pytest.importorskip("onnx")
    model_dir = _model_copy_without_graph(tmp_path)
    embedder = NoteEmbedder(model_dir)
    assert embedder.fingerprint == NoteEmbedder().fingerprint
    np.testing.assert_array_equal(embedder.embed(ASTHMA), NoteEmbedder().embed(ASTHMA))


def test_model_directory_without_the_graph_and_without_onnx_is_a_clear_error(tmp_path, monkeypatch):
    model_dir = _model_copy_without_graph(tmp_path)
    monkeypatch.setattr(bank_module, "_onnx_importable", lambda: False)
    with pytest.raises(BankError, match=r"embed-graph --model-dir"):
        NoteEmbedder(model_dir)


def test_embed_graph_command_writes_the_graph(tmp_path):
    pytest.importorskip("onnx")
    model_dir = _model_copy_without_graph(tmp_path)
    assert bank_module.main(["embed-graph", "--model-dir", str(model_dir)]) == 0
    assert (model_dir / EMBED_FILE).read_bytes() == (default_model_dir() / EMBED_FILE).read_bytes()


def test_a_bank_embedded_with_another_encoder_is_embedded_again(tmp_path):
    """Queries and bank always share one encoder: a bank whose stored fingerprint differs is re-embedded."""
    out = tmp_path / "bank"
    bank_module.main(["build", "--medec", str(USER_CSV), "--out", str(out), "--keep-graph"])
    header_path = out / "bank.json"
    header = json.loads(header_path.read_text(encoding="utf-8"))
    header["embedding"]["fingerprint"] = "another encoder"
    header_path.write_text(json.dumps(header), encoding="utf-8")
    np.save(out / "embeddings.npy", np.zeros((7, 384), dtype=np.float16))
    bank = ExampleBank.load(out)
    assert float(bank.embeddings[0] @ NoteEmbedder().embed(bank.examples[0].text())) > 0.999


# ------------------------------------------------------------------------------------------- MEDEC


@pytest.mark.medec
@pytest.mark.slow
def test_shipped_bank_is_rebuilt_from_medec(tmp_path):
    if not MEDEC.is_file():
        pytest.skip("../shared/medec is not available")
    out = tmp_path / "bank"
    bank_module.build_bank(MEDEC, out, write_graph=False)
    for name in ("examples.jsonl.gz", "bank.json", "PROVENANCE.md"):
        assert (out / name).read_bytes() == (default_bank_dir() / name).read_bytes(), name
    rebuilt = np.load(out / "embeddings.npy").astype(np.float32)
    shipped = np.load(default_bank_dir() / "embeddings.npy").astype(np.float32)
    assert float(np.min(np.sum(rebuilt * shipped, axis=1))) > 0.999
    shutil.rmtree(out)
