"""Plumbing tests of medcorr.TransformersGenerator.v1 with tiny models built and saved here.

The models are constructed from transformers config classes with a WordLevel tokenizer made with the
``tokenizers`` library, saved to a tmp folder and loaded back from that path (local files only). A
randomly initialised model writes garbage, which must give an empty proposal after one retry; a model
whose output layer is set to always emit one token that spells a JSON answer checks the parse path
through the real ``generate``. Nothing here is about correction quality.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch is in the train/test extras")
transformers = pytest.importorskip("transformers", reason="transformers is in the train/test extras")
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402

from medcorr.finding import ErrorType, Finding  # noqa: E402
from medcorr.generators.base import CorrectionRequest, Proposal  # noqa: E402
from medcorr.generators.prompting import build_messages  # noqa: E402
from medcorr.generators.transformers_gen import TransformersGenerator  # noqa: E402

NOTE = "Patient has fever and cough. Chest X-ray shows lobar consolidation. Diagnosis is asthma."
WORDS = ["patient", "fever", "cough", "chest", "diagnosis", "asthma", "the", "is", "and", "of", "a"]
ANSWER = json.dumps({"error": True, "corrected_span": "pneumonia", "corrected_sentence": None})
VETO_ANSWER = json.dumps({"error": False, "corrected_span": None, "corrected_sentence": None})


def request(note_score: float = 0.9) -> CorrectionRequest:
    start = NOTE.index("asthma")
    sentences = ((0, 28), (29, 67), (68, len(NOTE)))
    finding = Finding(start=start, end=start + 6, text="asthma", type=ErrorType.DIAGNOSIS, score=0.9, sentence=2)
    return CorrectionRequest(note=NOTE, sentences=sentences, finding=finding, note_score=note_score)


def make_tokenizer(extra_tokens: list[str]) -> "transformers.PreTrainedTokenizerFast":
    """A WordLevel tokenizer over a few words (everything else is [UNK]); ``extra_tokens`` are added whole."""
    vocab = {"[UNK]": 0, "[PAD]": 1, "[EOS]": 2}
    for word in WORDS:
        vocab[word] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    if extra_tokens:
        tokenizer.add_tokens(extra_tokens)
    return tokenizer


def save_causal(path: Path, forced_token: str | None = None) -> Path:
    """A 1-layer GPT-2; with ``forced_token`` its output layer always picks that (added) token."""
    tokenizer = make_tokenizer([forced_token] if forced_token else [])
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(tokenizer), n_positions=1024, n_embd=16, n_layer=1, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    model = transformers.GPT2LMHeadModel(config)
    if forced_token:
        target = tokenizer.convert_tokens_to_ids(forced_token)
        with torch.no_grad():
            model.transformer.ln_f.weight.zero_()
            model.transformer.ln_f.bias.fill_(1.0)  # every hidden state becomes all ones
            model.lm_head.weight.zero_()
            model.lm_head.weight[target].fill_(1.0)  # so the target's logit is the only non-zero one
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_seq2seq(path: Path) -> Path:
    """A tiny randomly initialised T5."""
    tokenizer = make_tokenizer([])
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    transformers.T5ForConditionalGeneration(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_random_causal_model_loads_from_path_and_garbage_gives_empty_proposal(tmp_path: Path) -> None:
    path = save_causal(tmp_path / "gpt2-random")
    gen = TransformersGenerator(str(path), max_new_tokens=8)
    assert gen.architecture == "causal"
    raw = gen.generate_text(build_messages(request()))
    assert raw.strip() and "{" not in raw  # the vocabulary cannot spell JSON
    gen.llm_calls = 0
    assert gen([request()]) == [Proposal()]
    assert gen.llm_calls == 2  # the first output did not parse: retried once with the reminder
    assert gen.failures == 1


def test_random_seq2seq_model_is_detected_and_handled(tmp_path: Path) -> None:
    path = save_seq2seq(tmp_path / "t5-random")
    gen = TransformersGenerator(str(path), max_new_tokens=6)
    assert gen.architecture == "seq2seq"
    assert isinstance(gen.model, transformers.T5ForConditionalGeneration)
    assert gen([request()]) == [Proposal()]
    assert gen.llm_calls == 2 and gen.failures == 1


def test_forced_answer_goes_through_generate_and_parse(tmp_path: Path) -> None:
    path = save_causal(tmp_path / "gpt2-answer", forced_token=ANSWER)
    gen = TransformersGenerator(str(path), max_new_tokens=3)
    assert ANSWER in gen.generate_text(build_messages(request()))
    assert gen.llm_calls == 1
    [proposal] = gen([request()])
    assert proposal.candidates == [("pneumonia", 1.0)]
    assert proposal.corrected_sentence == "Diagnosis is pneumonia."
    assert gen.llm_calls == 2 and gen.failures == 0  # parsed at the first try: no retry


def test_veto_and_cascade(tmp_path: Path) -> None:
    path = save_causal(tmp_path / "gpt2-veto", forced_token=VETO_ANSWER)
    vetoing = TransformersGenerator(str(path), max_new_tokens=2, allow_veto=True)
    assert vetoing([request()]) == [Proposal(veto=True)]
    keeping = TransformersGenerator(str(path), max_new_tokens=2, allow_veto=False, min_note_score=0.5)
    assert keeping([request(note_score=0.9), request(note_score=0.1)]) == [Proposal(), Proposal()]
    assert keeping.llm_calls == 1  # the low-scored note made no generate call


def test_chat_template_is_used_when_the_tokenizer_has_one(tmp_path: Path) -> None:
    path = save_causal(tmp_path / "gpt2-chat", forced_token=ANSWER)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    tokenizer.save_pretrained(path)
    gen = TransformersGenerator(str(path), max_new_tokens=2)
    prompt = gen._prompt_text(build_messages(request()))
    assert prompt.startswith("<system>") and prompt.endswith("<assistant>")
    assert gen([request()])[0].candidates == [("pneumonia", 1.0)]
    plain = TransformersGenerator(str(path), max_new_tokens=2, use_chat_template=False)
    assert plain._prompt_text(build_messages(request())).startswith("System: ")


def test_hub_ids_and_missing_folders_are_refused() -> None:
    with pytest.raises(ValueError, match="local model folder"):
        TransformersGenerator("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_folder_without_a_model_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="could not load"):
        TransformersGenerator(str(tmp_path))


def test_missing_torch_names_the_train_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"medcorr\[train\]"):
        TransformersGenerator(str(tmp_path))


def test_registered_factory(tmp_path: Path) -> None:
    from confection import Config
    from spacy.util import registry

    path = save_causal(tmp_path / "gpt2-cfg", forced_token=ANSWER)
    config = Config().from_str(
        f"""
        [generator]
        @medcorr_generators = "medcorr.TransformersGenerator.v1"
        model_path = "{path}"
        device = "cpu"
        max_new_tokens = 4
        top_k_findings = 1
        """
    )
    gen = registry.resolve(config)["generator"]
    assert isinstance(gen, TransformersGenerator)
    assert gen.max_new_tokens == 4 and gen.top_k_findings == 1
