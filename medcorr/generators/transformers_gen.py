"""``medcorr.TransformersGenerator.v1``: corrections from a local Hugging Face model (seq2seq or causal).

The model and tokenizer are loaded from a local folder only (``local_files_only=True``; a hub id is
refused), decoding is greedy, and the prompt and strict JSON parsing are the ones the OpenAI backend uses
(:mod:`medcorr.generators.prompting`): an unparseable output is retried once with a reminder and then
gives an empty :class:`~medcorr.generators.base.Proposal`. The same cascade options apply
(``min_note_score``, ``top_k_findings``, ``allow_veto``).

torch and transformers are not runtime dependencies: they are imported when the generator is built,
and a clear error names the ``train`` extra when they are missing.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Sequence

from medcorr.generators.base import CorrectionRequest, Proposal
from medcorr.generators.prompting import (
    ParsedReply,
    build_messages,
    parse_reply,
    prompt_key,
    render_plain,
    retry_messages,
    select_requests,
    to_proposal,
)
from medcorr.registry import generators

logger = logging.getLogger(__name__)

_ARCHITECTURES = ("auto", "causal", "seq2seq")


def _import_backend() -> tuple[Any, Any]:
    """Import torch and transformers, or raise an ImportError that says how to install them."""
    try:
        import torch
        import transformers
    except ImportError as error:
        raise ImportError(
            "medcorr.TransformersGenerator.v1 needs torch and transformers, which are not runtime "
            "dependencies of medcorr; install them with: pip install 'medcorr[train]'"
        ) from error
    return torch, transformers


class TransformersGenerator:
    """A correction :class:`~medcorr.generators.base.Generator` that runs a local HF model.

    See :func:`make_transformers_generator` for the options. Counters: ``llm_calls`` (generate calls),
    ``failures`` (requests left without an answer).
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        architecture: str = "auto",
        max_new_tokens: int = 128,
        max_input_tokens: int | None = None,
        use_chat_template: bool = True,
        min_note_score: float = 0.0,
        top_k_findings: int | None = 3,
        allow_veto: bool = False,
    ) -> None:
        if architecture not in _ARCHITECTURES:
            raise ValueError(f"architecture must be one of {_ARCHITECTURES}, got {architecture!r}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if top_k_findings is not None and top_k_findings < 1:
            raise ValueError(f"top_k_findings must be >= 1 or null (all), got {top_k_findings}")
        path = Path(model_path).expanduser()
        if not path.is_dir():
            raise ValueError(
                f"model_path must be a local model folder (config.json, weights, tokenizer); "
                f"{str(model_path)!r} is not a folder. Hub ids are not downloaded: save the model "
                f"locally first."
            )
        torch, transformers = _import_backend()
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device")
        self._torch = torch
        self.model_path = path
        self.device = device
        self.max_new_tokens = int(max_new_tokens)
        self.max_input_tokens = max_input_tokens
        self.use_chat_template = bool(use_chat_template)
        self.min_note_score = float(min_note_score)
        self.top_k_findings = top_k_findings
        self.allow_veto = bool(allow_veto)
        self.llm_calls = 0
        self.failures = 0
        self._lock = threading.Lock()

        try:
            config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
            if architecture == "auto":
                architecture = "seq2seq" if getattr(config, "is_encoder_decoder", False) else "causal"
            auto_model = (
                transformers.AutoModelForSeq2SeqLM
                if architecture == "seq2seq"
                else transformers.AutoModelForCausalLM
            )
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = auto_model.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"could not load a {architecture} model and tokenizer from {path}: {error}") from error
        self.architecture = architecture
        self.model.to(device)
        self.model.eval()
        # The model name in prompt hashes (log ids): the folder name, not the full local path.
        self._model_id = path.name

    def __call__(self, requests: Sequence[CorrectionRequest]) -> list[Proposal]:
        """One proposal per request, in order; never raises on a bad output."""
        requests = list(requests)
        selected = select_requests(requests, self.min_note_score, self.top_k_findings)
        answers: dict[str, ParsedReply | None] = {}
        proposals: list[Proposal] = []
        for request, chosen in zip(requests, selected):
            if not chosen:
                proposals.append(Proposal())
                continue
            messages = build_messages(request)
            key = prompt_key(self._model_id, messages)
            if key not in answers:
                answers[key] = self._resolve(messages, key[:12])
            proposals.append(to_proposal(answers[key], request, self.allow_veto))
        return proposals

    def _resolve(self, messages: list[dict[str, str]], rid: str) -> ParsedReply | None:
        """Generate (retrying once on an unparseable output) and parse."""
        try:
            reply = self.generate_text(messages)
            parsed = parse_reply(reply)
            if parsed is None:
                logger.info("medcorr local LM request %s: unparseable output, retrying once", rid)
                parsed = parse_reply(self.generate_text(retry_messages(messages, reply)))
            if parsed is None:
                self._count_failure()
                logger.warning("medcorr local LM request %s: output did not parse after one retry", rid)
            return parsed
        except Exception as error:  # noqa: BLE001 - a generator must never raise on a bad output
            self._count_failure()
            logger.warning("medcorr local LM request %s failed: %s", rid, type(error).__name__)
            return None

    def _count_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def _prompt_text(self, messages: list[dict[str, str]]) -> str:
        template = getattr(self.tokenizer, "chat_template", None)
        if self.use_chat_template and self.architecture == "causal" and template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return render_plain(messages)

    def generate_text(self, messages: list[dict[str, str]]) -> str:
        """Greedy-decode the model's answer to ``messages`` (new text only)."""
        torch = self._torch
        text = self._prompt_text(messages)
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if self.max_input_tokens:
            kwargs.update(truncation=True, max_length=int(self.max_input_tokens))
        encoded = self.tokenizer(text, **kwargs)
        encoded.pop("token_type_ids", None)
        encoded = {name: tensor.to(self.device) for name, tensor in encoded.items()}
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        with self._lock:
            self.llm_calls += 1
        with torch.no_grad():
            output = self.model.generate(
                **encoded,
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=pad_id,
            )
        tokens = output[0]
        if self.architecture == "causal":
            tokens = tokens[encoded["input_ids"].shape[1] :]
        return self.tokenizer.decode(tokens, skip_special_tokens=True)


@generators("medcorr.TransformersGenerator.v1")
def make_transformers_generator(
    model_path: str,
    device: str = "cpu",
    architecture: str = "auto",
    max_new_tokens: int = 128,
    max_input_tokens: int | None = None,
    use_chat_template: bool = True,
    min_note_score: float = 0.0,
    top_k_findings: int | None = 3,
    allow_veto: bool = False,
) -> TransformersGenerator:
    """Build a :class:`TransformersGenerator` from config.

    - ``model_path``: a local folder with the model and its tokenizer (never downloaded).
    - ``device``: ``cpu``, ``cuda`` or ``cuda:N``.
    - ``architecture``: ``auto`` (from ``config.is_encoder_decoder``), ``causal`` or ``seq2seq``.
    - ``max_new_tokens``: generation budget; decoding is greedy. ``max_input_tokens``: truncate the
      prompt to this many tokens (null = no truncation).
    - ``use_chat_template``: use the tokenizer's chat template for causal models that have one
      (otherwise a plain ``System:/User:/Assistant:`` rendering).
    - ``min_note_score``, ``top_k_findings``, ``allow_veto``: the cascade, as in
      ``medcorr.OpenAIGenerator.v1``.
    """
    return TransformersGenerator(
        model_path=model_path,
        device=device,
        architecture=architecture,
        max_new_tokens=max_new_tokens,
        max_input_tokens=max_input_tokens,
        use_chat_template=use_chat_template,
        min_note_score=min_note_score,
        top_k_findings=top_k_findings,
        allow_veto=allow_veto,
    )
