"""The spaCy component with the real shipped ONNX model."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin

from medcorr.finding import ERROR_TYPES, Finding, Role, SourceKind, Status, Verdict

FIXTURES = Path(__file__).parent / "fixtures" / "notes"
EXAMPLE = Path(__file__).resolve().parents[1] / "medcorr" / "data" / "examples" / "note_pneumonia.txt"
LABELS = {t.value for t in ERROR_TYPES}


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr")
    return nlp


@pytest.fixture(scope="module")
def note():
    return EXAMPLE.read_text(encoding="utf-8")


def test_entry_point_works_without_importing_medcorr():
    code = (
        "import spacy, sys\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('medcorr')\n"
        "doc = nlp('The patient has fever. She is diagnosed with influenza.')\n"
        "v = doc._.medcorr\n"
        "print(type(v).__name__, v.status.value, len(v.claims) > 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "Verdict claims_only True"


def test_claims_are_ranked_spans_with_labels_and_shared_objects(nlp, note):
    doc = nlp(note)
    verdict = doc._.medcorr
    assert isinstance(verdict, Verdict)
    assert verdict.status is Status.CLAIMS_ONLY and verdict.flag is None and verdict.score is None
    assert not verdict.findings and not list(doc.spans["medcorr"])
    assert [claim.rank for claim in verdict.claims] == list(range(len(verdict.claims))) and len(verdict.claims) == 3
    assert [c.score for c in verdict.claims] == sorted((c.score for c in verdict.claims), reverse=True)
    assert verdict.suspect_sentence == verdict.claims[0].sentence
    spans = list(doc.spans["medcorr_claims"])
    assert len(spans) == 3
    sentences = list(doc.sents)
    for span, claim in zip(spans, verdict.claims):
        assert span.label_ in LABELS
        finding = span._.medcorr
        assert isinstance(finding, Finding) and finding == claim and finding.role is Role.CLAIM
        assert (finding.start, finding.end) == (span.start_char, span.end_char)
        assert doc.text[finding.start:finding.end] == finding.text
        assert 0.0 <= finding.score <= 1.0
        assert finding.correction is None and finding.corrected_sentence is None and not finding.evidence
        sentence = sentences[finding.sentence]
        assert sentence.start_char <= finding.start and finding.end <= sentence.end_char


def test_an_explicit_threshold_forces_the_detector_head_and_warns(note):
    with pytest.warns(UserWarning, match="AUC is 0.4"):
        always = spacy.blank("en")
        always.add_pipe("medcorr", config={"threshold": 0.0})
    with pytest.warns(UserWarning):
        never = spacy.blank("en")
        never.add_pipe("medcorr", config={"threshold": 1.0})
    flagged, clean = always(note)._.medcorr, never(note)._.medcorr
    assert flagged.flag is True and flagged.status is Status.CHECKED
    assert flagged.error_sentence == flagged.suspect_sentence and len(flagged.findings) == 1
    assert flagged.source.kind is SourceKind.DETECTOR and "AUC is 0.4" in flagged.source.measured
    assert flagged.findings[0].evidence == [flagged.source] and flagged.findings[0].correction is None
    assert clean.flag is False and clean.error_sentence == -1 and not clean.findings
    assert flagged.score == pytest.approx(clean.score)


def test_bad_threshold_is_rejected():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="threshold"):
        nlp.add_pipe("medcorr", config={"threshold": 1.5})


def test_predict_has_no_side_effects_and_handles_empty_batches(nlp, note):
    component = nlp.get_pipe("medcorr")
    doc = nlp.make_doc(note)
    assert component.predict([]) == []
    predictions = component.predict([doc, nlp.make_doc(""), nlp.make_doc("   \n ")])
    assert not doc.has_annotation("SENT_START")
    assert "medcorr" not in doc.spans
    assert "medcorr_claims" not in doc.spans
    assert predictions[1][1] == Verdict.empty() and predictions[2][1] == Verdict.empty()
    assert predictions[1][1].status is Status.EMPTY and not predictions[1][1].claims


def test_pipe_batches_equal_single_calls(nlp, note):
    texts = [note, (FIXTURES / "clean_uti.txt").read_text(), "", "Fever."]
    piped = [d._.medcorr for d in nlp.pipe(texts, batch_size=4)]
    single = [nlp(t)._.medcorr for t in texts]
    # on CPU the default runs one window per ONNX call, so a note's score does not depend on its batch mates
    assert piped == single


def test_default_cpu_batching_is_one_window_per_onnx_call(nlp, note, monkeypatch):
    detector = nlp.get_pipe("medcorr").detector
    calls = []
    original = detector.run_batch
    monkeypatch.setattr(detector, "run_batch", lambda batch: calls.append(batch.input_ids.shape) or original(batch))
    list(nlp.pipe([note] * 3, batch_size=3))
    assert [shape[0] for shape in calls] == [1, 1, 1]
    assert detector.batch_size == 1


def test_configured_batch_size_makes_one_onnx_call_per_batch(note, monkeypatch):
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config={"batch_size": 8})
    detector = nlp.get_pipe("medcorr").detector
    calls = []
    original = detector.run_batch
    monkeypatch.setattr(detector, "run_batch", lambda batch: calls.append(batch.input_ids.shape) or original(batch))
    list(nlp.pipe([note] * 8, batch_size=8))
    assert len(calls) == 1 and calls[0][0] == 8


def test_auto_batch_size_follows_the_first_provider():
    from medcorr.detector import CPU, CUDA, resolve_batch_size

    assert resolve_batch_size(0, [CPU]) == 1
    assert resolve_batch_size(0, [CUDA, CPU]) == 64
    assert resolve_batch_size(16, [CPU]) == 16


def test_docbin_round_trip_keeps_verdict_and_scores(nlp, note):
    doc = nlp(note)
    data = DocBin(store_user_data=True, docs=[doc]).to_bytes()
    restored = list(DocBin().from_bytes(data).get_docs(spacy.blank("en").vocab))[0]
    assert restored._.medcorr == doc._.medcorr and restored._.medcorr.claims
    assert restored.spans["medcorr_claims"][0]._.medcorr == doc.spans["medcorr_claims"][0]._.medcorr


def test_to_disk_and_load_give_identical_scores(nlp, note, tmp_path):
    nlp.to_disk(tmp_path / "pipeline")
    for name in ("model.onnx", "model.unpadded.onnx", "model.data"):
        assert (tmp_path / "pipeline" / "medcorr" / "model" / name).is_file()
    assert (tmp_path / "pipeline" / "medcorr" / "model" / "model.embed.onnx").is_file()
    assert (tmp_path / "pipeline" / "medcorr" / "model" / "tokenizer.json").is_file()
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("medcorr").cfg == nlp.get_pipe("medcorr").cfg
    assert loaded(note)._.medcorr == nlp(note)._.medcorr
    overridden = spacy.load(tmp_path / "pipeline", config={"components.medcorr.max_claims": 1})
    assert overridden.get_pipe("medcorr").cfg["max_claims"] == 1 and len(overridden(note)._.medcorr.claims) == 1


def test_existing_sentence_boundaries_are_kept(nlp):
    doc = nlp.make_doc("Fever and cough. Started on amoxicillin for pneumonia.")
    for token in doc:
        token.is_sent_start = token.i == 0
    doc = nlp(doc)
    assert len(list(doc.sents)) == 1
    assert doc._.medcorr.suspect_sentence == 0


def test_cuda_without_onnxruntime_gpu_is_a_clear_error():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    nlp = spacy.blank("en")
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        nlp.add_pipe("medcorr", config={"providers": ["CUDAExecutionProvider"]})


def test_medspacy_pipeline_interop_and_negation(note):
    import medspacy

    nlp = medspacy.load()
    nlp.add_pipe("medcorr", config={"generator": None})
    doc = nlp(note)
    assert doc._.medcorr.claims
    negated_note = (FIXTURES / "negated.txt").read_text()
    ignoring_context = medspacy.load()
    ignoring_context.add_pipe("medcorr", config={"generator": None, "respect_context": False})
    assert ignoring_context(negated_note)._.medcorr.claims[0].text == "pneumonia"
    respecting = nlp(negated_note)._.medcorr
    assert all("pneumonia" not in claim.text.lower() for claim in respecting.claims)


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01binary\x02", "Der Patient hat Fieber. Diagnose: Grippe.",
                                  "💊💊💊 ???", "a" * 5000])
def test_odd_inputs_give_a_normal_result(nlp, text):
    verdict = nlp(text)._.medcorr
    assert isinstance(verdict, Verdict) and verdict.flag is None and verdict.score is None
    assert verdict.status_reason


@pytest.mark.slow
def test_finding_in_sentence_200_of_a_long_note_is_located():
    filler = "Vital signs were stable and the patient felt well on the ward today."
    claim = "A chest x-ray shows right lower lobe consolidation and she is diagnosed with community-acquired pneumonia."
    sentences = [filler] * 200 + [claim] + [filler] * 20
    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr")
    doc = nlp(" ".join(sentences))
    assert doc._.medcorr.suspect_sentence == 200


def test_pipe_over_many_batches_equals_single_calls_with_and_without_submit(nlp, note):
    texts = [note, (FIXTURES / "clean_uti.txt").read_text(), "", "Fever.", note[: len(note) // 2]] * 2
    single = [nlp(t)._.medcorr for t in texts]
    assert [d._.medcorr for d in nlp.pipe(texts, batch_size=2)] == single

    component = nlp.get_pipe("medcorr")
    detector = component.detector

    class PredictOnly:  # a detector backend without prepare()/submit()
        def __getattr__(self, name):
            if name in ("prepare", "submit"):
                raise AttributeError(name)
            return getattr(detector, name)

    component.detector = PredictOnly()
    try:
        assert [d._.medcorr for d in nlp.pipe(texts, batch_size=3)] == single
    finally:
        component.detector = detector


def test_pipe_closed_early_cancels_the_queued_batch(nlp, note, monkeypatch):
    detector = nlp.get_pipe("medcorr").detector
    handles = []
    original = detector.submit

    def spy(prepared):
        handle = original(prepared)
        handles.append(handle)
        monkeypatch.setattr(handle, "cancel", lambda: handles.append("cancelled"))
        return handle

    monkeypatch.setattr(detector, "submit", spy)
    stream = nlp.pipe([note] * 6, batch_size=1)
    next(stream)
    stream.close()
    assert handles.count("cancelled") == 1 and len(handles) == 3  # two batches submitted, the unfinished one cancelled
