"""The ready pipeline configs in pipelines/ build and run (the verifier ones only build: no server call)."""
from pathlib import Path

import pytest

from medcorr.pipeline import build_pipeline, verdict_of

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
NOTE = "A 45-year-old man presents with cough and fever for two weeks. Chest x-ray shows no evidence of pneumonia."


@pytest.mark.parametrize("name", ["medcorr.cfg", "medspacy_medcorr.cfg"])
def test_offline_configs_run(name):
    nlp = build_pipeline(PIPELINES / name)
    verdict = verdict_of(nlp(NOTE))
    assert verdict.claims and verdict.flag is None
    if name.startswith("medspacy"):
        assert nlp.pipe_names[-1] == "medcorr" and "medspacy_context" in nlp.pipe_names
        assert all("pneumonia" not in c.text for c in verdict.claims)  # ConText negation respected
    else:
        assert verdict.suspect_sentence == 1


@pytest.mark.parametrize("name", ["medcorr_verifier_vllm.cfg", "medcorr_verifier_ollama.cfg",
                                  "medcorr_verifier_llamacpp.cfg"])
def test_verifier_configs_build_a_loopback_chat_verifier_without_calling_it(name):
    nlp = build_pipeline(PIPELINES / name)
    verifier = nlp.get_pipe("medcorr").verifier
    assert type(verifier).__name__ == "ChatVerifier" and verifier.client.base_url.startswith("http://127.0.0.1:")
    assert verifier.stats()["calls"] == 0


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        build_pipeline(tmp_path / "nope.cfg")
