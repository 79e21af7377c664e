"""``medcorr.ChatVerifier.v1``: a language model on any OpenAI-compatible chat endpoint judges the claims.

One focused question per note (see :mod:`medcorr.verifiers.prompt`), with retrieved solved examples
(:mod:`medcorr.verifiers.bank`; never the note itself or its twin), strict JSON answers, optional
self-consistency (``samples`` answers, majority), a disk cache, bounded concurrency over all the notes of a
batch, timeouts, retries and ``Retry-After`` (:mod:`medcorr.verifiers.client`). A note the model could not
answer is a failed judgement (status ``unverified`` with the reason), never a silent "no error".
"""
from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from medcorr.evidence import Judgement, asserted
from medcorr.finding import Evidence, SourceKind
from medcorr.registry import verifiers
from medcorr.verifiers.base import VerificationRequest
from medcorr.verifiers.cache import ReplyCache
from medcorr.verifiers.client import ChatClient, ChatFailure
from medcorr.verifiers.prompt import Answer, answer_schema, build_messages, parse_answer, prompt_key, reminder_messages

logger = logging.getLogger(__name__)

#: ``none``; ``json_object`` (any JSON); ``json_object_schema`` (``{"type": "json_object", "schema": ...}``:
#: llama.cpp's server and llama-cpp-python constrain decoding to the answer's schema); ``json_schema``
#: (OpenAI's structured outputs: vLLM, OpenAI, Azure OpenAI).
RESPONSE_FORMATS = ("none", "json_object", "json_object_schema", "json_schema")
#: What the evidence says about a verifier nobody measured.
NOT_MEASURED = ("not measured by medcorr for this model: measure it on labelled notes with "
                "'medcorr medec run --config ...' and record the result in the verifier's 'discrimination' setting")
#: Questions asked in a row per note and sample at most: an answer rejected once is asked again once.
ASKS_PER_ANSWER = 2


class ChatVerifier:
    """A :class:`~medcorr.verifiers.base.Verifier` backed by a chat-completions endpoint (see
    :func:`make_chat_verifier` for the options)."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", model: str = "default", *,
                 allow_remote: bool = False, api_key_env: str | None = "OPENAI_API_KEY",
                 api_key_header: str = "Authorization", api_version: str | None = None, timeout: float = 60.0,
                 max_retries: int = 2, backoff: float = 1.0, max_concurrency: int = 4, temperature: float = 0.0,
                 samples: int = 1, sample_temperature: float = 0.7, max_tokens: int = 256, seed: int | None = 0,
                 response_format: str = "none", examples: int = 4, example_bank: str = "",
                 cache_dir: str | None = None, discrimination: str = "") -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if examples < 0:
            raise ValueError(f"examples must be >= 0, got {examples}")
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f"response_format must be one of {RESPONSE_FORMATS}, got {response_format!r}")
        self.client = ChatClient(base_url, model, allow_remote=allow_remote, api_key_env=api_key_env,
                                 api_key_header=api_key_header, api_version=api_version, timeout=timeout,
                                 max_retries=max_retries, backoff=backoff)
        self.model = model
        self.max_concurrency = int(max_concurrency)
        self.temperature = float(temperature)
        self.samples = int(samples)
        self.sample_temperature = float(sample_temperature)
        self.max_tokens = int(max_tokens)
        self.seed = seed
        self.response_format = response_format
        self.examples = int(examples)
        self.example_bank = example_bank
        self.cache = ReplyCache(cache_dir)
        self.discrimination = discrimination or NOT_MEASURED
        self.name = f"medcorr.ChatVerifier.v1 {model}@{self.client.host}"
        self.cache_hits = 0
        self.failures = 0
        self._bank = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    def stats(self) -> dict[str, int]:
        """``calls`` (HTTP requests sent), ``prompt_tokens``, ``completion_tokens``, ``cache_hits``,
        ``failures`` (notes left unverified)."""
        with self._lock:
            return {"calls": self.client.calls, "prompt_tokens": self.client.prompt_tokens,
                    "completion_tokens": self.client.completion_tokens, "cache_hits": self.cache_hits,
                    "failures": self.failures}

    @property
    def bank(self):
        """The example bank (shipped, or the user's ``example_bank`` MEDEC CSV), loaded on first use."""
        if self._bank is None:
            from medcorr.verifiers.bank import ExampleBank

            self._bank = (ExampleBank.from_medec_csv(self.example_bank) if self.example_bank
                          else ExampleBank.load())
        return self._bank

    @property
    def notes_in_flight(self) -> int:
        """Notes whose questions fill ``max_concurrency`` (each note is asked ``samples`` times)."""
        return math.ceil(self.max_concurrency / self.samples)

    def worst_case_seconds(self, notes: int) -> float:
        """The longest one call on ``notes`` notes can take: ``ceil(notes x samples / max_concurrency)``
        rounds of :data:`ASKS_PER_ANSWER` questions in a row, each the client's worst request."""
        rounds = math.ceil(max(0, notes) * self.samples / self.max_concurrency)
        return rounds * ASKS_PER_ANSWER * self.client.worst_case_seconds()

    def messages_for(self, request: VerificationRequest) -> list[dict[str, str]]:
        """The chat messages for one request (with its retrieved examples)."""
        examples = self.bank.nearest(request.note, self.examples) if self.examples else []
        return build_messages(request, examples)

    def __call__(self, requests: Sequence[VerificationRequest]) -> list[Judgement]:
        """One judgement per request, in order; every sample of every request is in flight together,
        up to ``max_concurrency`` at once."""
        requests = list(requests)
        if not requests:
            return []
        messages = [self.messages_for(request) for request in requests]
        units = [(index, sample) for index in range(len(requests)) for sample in range(self.samples)]
        workers = min(self.max_concurrency, len(units))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medcorr-verifier") as pool:
            answers = list(pool.map(lambda unit: self._answer(requests[unit[0]], messages[unit[0]], unit[1]), units))
        per_request: list[list[Answer | str]] = [[] for _ in requests]
        for (index, _), answer in zip(units, answers):
            per_request[index].append(answer)
        return [self._judge(request, answers) for request, answers in zip(requests, per_request)]

    # ------------------------------------------------------------------ one sample
    def settings(self, request: VerificationRequest, sample: int = 0) -> dict[str, Any]:
        """The sampling and format settings sent with sample ``sample`` of ``request``."""
        settings: dict[str, Any] = {"temperature": self.temperature if self.samples == 1 else self.sample_temperature,
                                    "max_tokens": self.max_tokens}
        if self.seed is not None:
            settings["seed"] = int(self.seed) + sample
        if self.response_format == "json_object":
            settings["response_format"] = {"type": "json_object"}
        elif self.response_format == "json_object_schema":
            settings["response_format"] = {"type": "json_object", "schema": answer_schema(request)}
        elif self.response_format == "json_schema":
            settings["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "medcorr_verdict", "strict": True, "schema": answer_schema(request)}}
        return settings

    def _answer(self, request: VerificationRequest, messages: list[dict[str, str]], sample: int) -> Answer | str:
        """A validated answer, or why there is none (one line, no note text)."""
        settings = self.settings(request, sample)
        key = prompt_key(self.model, messages, settings)
        reply = self._reply(key, messages, settings)
        if isinstance(reply, ChatFailure):
            return f"no answer from the endpoint ({reply.reason})"
        parsed = parse_answer(reply, request)
        if isinstance(parsed, Answer):
            return parsed
        retry = reminder_messages(messages, reply, parsed)
        second = self._reply(prompt_key(self.model, retry, settings), retry, settings)
        if isinstance(second, ChatFailure):
            return f"no answer from the endpoint ({second.reason})"
        reparsed = parse_answer(second, request)
        return reparsed if isinstance(reparsed, Answer) else f"answer rejected twice ({reparsed})"

    def _reply(self, key: str, messages: list[dict[str, str]], settings: dict[str, Any]) -> str | ChatFailure:
        cached = self.cache.get(key)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
            return str(cached["reply"])
        reply = self.client.complete({"messages": messages, **settings}, key[:12])
        if isinstance(reply, ChatFailure):
            return reply
        self.cache.put(key, reply.content, reply.prompt_tokens, reply.completion_tokens)
        return reply.content

    # ------------------------------------------------------------------ the note's judgement
    def _judge(self, request: VerificationRequest, answers: list[Answer | str]) -> Judgement:
        valid = [a for a in answers if isinstance(a, Answer)]
        if not valid:
            with self._lock:
                self.failures += 1
            return Judgement(Evidence(SourceKind.VERIFIER, self.name, reason=str(answers[0]),
                                      measured=self.discrimination), error=None)
        votes = Counter((a.error, a.sentence) for a in valid)
        ranked = votes.most_common()
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            with self._lock:
                self.failures += 1
            return Judgement(Evidence(SourceKind.VERIFIER, self.name, measured=self.discrimination,
                                      reason=f"the model's {len(valid)} answers tie: {_describe(votes)}"), error=None)
        (error, sentence), count = ranked[0]
        share = count / len(valid)
        answer = next(a for a in valid if (a.error, a.sentence) == (error, sentence))
        evidence = Evidence(SourceKind.VERIFIER, self.name, reason=answer.rationale, confidence=share,
                            measured=self.discrimination)
        if not error:
            return Judgement(evidence, error=False, score=1.0 - share)
        claim = next(c for c in request.claims if c.sentence == sentence)
        finding = asserted(claim, evidence, corrected_sentence=answer.corrected_sentence,
                           correction_source=self.name)
        return Judgement(evidence, error=True, score=share, findings=[finding])


def _describe(votes: Counter) -> str:
    return ", ".join(f"{'error in sentence ' + str(s) if e else 'no error'} x{n}" for (e, s), n in sorted(votes.items()))


@verifiers("medcorr.ChatVerifier.v1")
def make_chat_verifier(base_url: str = "http://127.0.0.1:8000/v1", model: str = "default", allow_remote: bool = False,
                       api_key_env: str | None = "OPENAI_API_KEY", api_key_header: str = "Authorization",
                       api_version: str | None = None, timeout: float = 60.0, max_retries: int = 2,
                       backoff: float = 1.0, max_concurrency: int = 4, temperature: float = 0.0, samples: int = 1,
                       sample_temperature: float = 0.7, max_tokens: int = 256, seed: int | None = 0,
                       response_format: str = "none", examples: int = 4, example_bank: str = "",
                       cache_dir: str | None = None, discrimination: str = "") -> ChatVerifier:
    """Build a :class:`ChatVerifier` from config.

    - ``base_url``: the endpoint up to ``/v1`` (vLLM ``http://127.0.0.1:8000/v1``, Ollama
      ``http://127.0.0.1:11434/v1``, llama.cpp ``http://127.0.0.1:8080/v1``); ``model``: the name it expects.
    - ``allow_remote``: note text may go to a host that is not this machine (default false: refused).
    - ``api_key_env``: the environment variable holding the API key (never the key itself);
      ``api_key_header``: ``Authorization`` (Bearer) or ``api-key`` (Azure OpenAI); ``api_version``.
    - ``timeout`` (s per attempt), ``max_retries``, ``backoff`` (first wait, doubled; ``Retry-After`` wins).
    - ``max_concurrency``: requests in flight at once, across all notes of a batch.
    - ``samples``: answers per note (self-consistency; majority wins, a tie is ``unverified``), drawn at
      ``sample_temperature``; with one sample, ``temperature`` (0 = greedy). ``seed`` (+ sample index).
    - ``response_format``: ``none``, ``json_object``, ``json_object_schema`` (llama.cpp, llama-cpp-python) or
      ``json_schema`` (vLLM, OpenAI): the schema variants constrain decoding to a valid answer.
    - ``examples``: retrieved solved examples per prompt (0 = none); ``example_bank``: a MEDEC-format CSV of
      your own solved notes (empty = the shipped MEDEC-MS validation notes, CC BY 4.0).
    - ``cache_dir``: disk cache of replies (a re-run makes no calls); ``discrimination``: what you measured
      of this model (shown as the evidence's ``measured``).
    """
    return ChatVerifier(base_url, model, allow_remote=allow_remote, api_key_env=api_key_env,
                        api_key_header=api_key_header, api_version=api_version, timeout=timeout,
                        max_retries=max_retries, backoff=backoff, max_concurrency=max_concurrency,
                        temperature=temperature, samples=samples, sample_temperature=sample_temperature,
                        max_tokens=max_tokens, seed=seed, response_format=response_format, examples=examples,
                        example_bank=example_bank, cache_dir=cache_dir, discrimination=discrimination)
