"""``medcorr.OpenAIGenerator.v1``: corrections from any OpenAI-compatible chat-completions endpoint.

Works with vLLM, the llama.cpp / llama-cpp-python servers, Ollama, OpenAI and Azure OpenAI (v1 API, with
``api_key_header = "api-key"``). Only the standard library is used (``urllib.request``), so the runtime
gets no new dependency.

Cascade: a request is sent only when its ``note_score`` is at least ``min_note_score`` and its finding is
among the ``top_k_findings`` best-scored findings of its note; the others get an empty
:class:`~medcorr.generators.base.Proposal` without a call. Answers are cached on disk (one JSON file
per sha256 of model + prompt), so a re-run makes no calls.

Failure handling never raises: network errors and timeouts are retried ``max_retries`` times with
exponential backoff, an unparseable reply is retried once with a reminder, and whatever still fails
gives an empty proposal and a WARNING that names the request by its hash only. Note text is never
logged. The counters ``llm_calls`` (HTTP requests sent), ``cache_hits`` and ``failures`` (requests
left without an answer) are public attributes.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from medcorr.generators.base import CorrectionRequest, Proposal
from medcorr.generators.prompting import (
    ParsedReply,
    build_messages,
    parse_reply,
    prompt_key,
    retry_messages,
    select_requests,
    to_proposal,
)
from medcorr.registry import generators

logger = logging.getLogger(__name__)

#: HTTP statuses worth retrying (transient); any other 4xx is final.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})

_CACHE_VERSION = 1


class _TransientError(Exception):
    """A failed attempt that may succeed when retried (network error, timeout, 5xx, bad envelope)."""


class _FinalError(Exception):
    """A failed attempt that retrying will not fix (4xx such as 401, 404)."""


class OpenAIGenerator:
    """A correction :class:`~medcorr.generators.base.Generator` backed by a chat-completions endpoint.

    Call it with a sequence of :class:`CorrectionRequest` and get one :class:`Proposal` per request, in
    order. See :func:`make_openai_generator` for the meaning of the options.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8000/v1",
        model: str = "default",
        api_key_env: str | None = "OPENAI_API_KEY",
        api_key_header: str = "Authorization",
        api_version: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff: float = 1.0,
        max_concurrency: int = 4,
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int | None = 0,
        json_mode: bool = False,
        cache_dir: str | Path | None = None,
        min_note_score: float = 0.0,
        top_k_findings: int | None = 3,
        allow_veto: bool = False,
    ) -> None:
        if urllib.parse.urlsplit(base_url or "").scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL such as 'http://localhost:8000/v1', got {base_url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if top_k_findings is not None and top_k_findings < 1:
            raise ValueError(f"top_k_findings must be >= 1 or null (all), got {top_k_findings}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.api_key_header = api_key_header
        self.api_version = api_version
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_concurrency = int(max_concurrency)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.seed = seed
        self.json_mode = bool(json_mode)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.min_note_score = float(min_note_score)
        self.top_k_findings = top_k_findings
        self.allow_veto = bool(allow_veto)
        self.llm_calls = 0
        self.cache_hits = 0
        self.failures = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        """The chat-completions URL requests are POSTed to."""
        url = f"{self.base_url}/chat/completions"
        if self.api_version:
            url += "?" + urllib.parse.urlencode({"api-version": self.api_version})
        return url

    @property
    def stats(self) -> dict[str, int]:
        """The counters as a dict: ``llm_calls``, ``cache_hits``, ``failures``."""
        with self._lock:
            return {"llm_calls": self.llm_calls, "cache_hits": self.cache_hits, "failures": self.failures}

    def reset_counters(self) -> None:
        """Set all counters back to zero."""
        with self._lock:
            self.llm_calls = self.cache_hits = self.failures = 0

    def __call__(self, requests: Sequence[CorrectionRequest]) -> list[Proposal]:
        """One proposal per request, in order; never raises on a bad reply or a network failure."""
        requests = list(requests)
        selected = select_requests(requests, self.min_note_score, self.top_k_findings)
        keys: list[str | None] = [None] * len(requests)
        unique: dict[str, list[dict[str, str]]] = {}
        for index, request in enumerate(requests):
            if not selected[index]:
                continue
            messages = build_messages(request)
            key = prompt_key(self.model, messages)
            keys[index] = key
            unique.setdefault(key, messages)

        answers: dict[str, ParsedReply | None] = {}
        pending: list[str] = []
        for key in unique:
            hit, parsed = self._cache_get(key)
            if hit:
                with self._lock:
                    self.cache_hits += 1
                answers[key] = parsed
            else:
                pending.append(key)

        if pending:
            workers = min(self.max_concurrency, len(pending))
            if workers == 1:
                results = [self._resolve(key, unique[key]) for key in pending]
            else:
                with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medcorr-llm") as pool:
                    results = list(pool.map(lambda k: self._resolve(k, unique[k]), pending))
            answers.update(zip(pending, results))

        proposals = []
        for request, key in zip(requests, keys):
            if key is None:
                proposals.append(Proposal())
            else:
                proposals.append(to_proposal(answers.get(key), request, self.allow_veto))
        return proposals

    # ------------------------------------------------------------------ one request

    def _resolve(self, key: str, messages: list[dict[str, str]]) -> ParsedReply | None:
        """Ask the endpoint (retrying once on an unparseable reply); cache a definite outcome."""
        rid = key[:12]
        try:
            reply = self._complete(messages, rid)
            if reply is None:
                self._count_failure()
                return None
            parsed = parse_reply(reply)
            if parsed is None:
                logger.info("medcorr LLM request %s: unparseable reply, retrying once", rid)
                second = self._complete(retry_messages(messages, reply), rid)
                if second is None:
                    self._count_failure()
                    return None
                parsed = parse_reply(second)
                reply = second
                if parsed is None:
                    self._count_failure()
                    logger.warning("medcorr LLM request %s: reply did not parse after one retry", rid)
            self._cache_put(key, parsed, reply)
            return parsed
        except Exception as error:  # noqa: BLE001 - a generator must never raise on a bad reply
            self._count_failure()
            logger.warning("medcorr LLM request %s failed: %s", rid, type(error).__name__)
            return None

    def _count_failure(self) -> None:
        with self._lock:
            self.failures += 1

    def _complete(self, messages: list[dict[str, str]], rid: str) -> str | None:
        """The assistant text for ``messages``, or None once retries are spent (logged as WARNING)."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        if self.seed is not None:
            body["seed"] = self.seed
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        reason = "unknown"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            with self._lock:
                self.llm_calls += 1
            try:
                return self._post(data)
            except _FinalError as error:
                logger.warning("medcorr LLM request %s: giving up, %s", rid, error)
                return None
            except _TransientError as error:
                reason = str(error)
                logger.info("medcorr LLM request %s: attempt %d failed (%s)", rid, attempt + 1, reason)
        logger.warning(
            "medcorr LLM request %s: no answer after %d attempt(s), last error: %s",
            rid,
            self.max_retries + 1,
            reason,
        )
        return None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "medcorr"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            if self.api_key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {key}"
            else:
                headers[self.api_key_header] = key
        return headers

    def _post(self, data: bytes) -> str:
        """One HTTP attempt; the reply's message content ("" when it has none)."""
        request = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
            if status in RETRYABLE_STATUS or status >= 500:
                raise _TransientError(f"HTTP {status}") from None
            raise _FinalError(f"HTTP {status}") from None
        except urllib.error.URLError as error:
            inner = error.reason
            name = type(inner).__name__ if isinstance(inner, BaseException) else "URLError"
            raise _TransientError(name) from None
        except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException, OSError) as error:
            raise _TransientError(type(error).__name__) from None
        try:
            envelope = json.loads(raw.decode("utf-8"))
            message = envelope["choices"][0]["message"]
            content = message.get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _TransientError("malformed response envelope") from None
        return content if isinstance(content, str) else ""

    # ------------------------------------------------------------------ disk cache

    def _cache_path(self, key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> tuple[bool, ParsedReply | None]:
        """(hit, answer); a missing, unreadable or foreign file is a miss."""
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return False, None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("version") != _CACHE_VERSION or entry.get("key") != key:
                return False, None
            answer = entry.get("answer")
            if answer is None:
                return True, None
            return True, ParsedReply(
                error=bool(answer["error"]),
                corrected_span=answer.get("corrected_span"),
                corrected_sentence=answer.get("corrected_sentence"),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            logger.warning("medcorr LLM cache entry %s unreadable, ignoring it", key[:12])
            return False, None

    def _cache_put(self, key: str, parsed: ParsedReply | None, reply: str) -> None:
        """Store an outcome atomically (write a temp file, then rename); errors are logged, not raised."""
        path = self._cache_path(key)
        if path is None:
            return
        entry: dict[str, Any] = {
            "version": _CACHE_VERSION,
            "key": key,
            "model": self.model,
            "answer": asdict(parsed) if parsed is not None else None,
            "reply": reply,
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as tmp:
                json.dump(entry, tmp, ensure_ascii=False)
            os.replace(tmp_name, path)
        except OSError as error:
            logger.warning("medcorr LLM cache write for %s failed: %s", key[:12], type(error).__name__)


@generators("medcorr.OpenAIGenerator.v1")
def make_openai_generator(
    base_url: str = "http://localhost:8000/v1",
    model: str = "default",
    api_key_env: str | None = "OPENAI_API_KEY",
    api_key_header: str = "Authorization",
    api_version: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    backoff: float = 1.0,
    max_concurrency: int = 4,
    temperature: float = 0.0,
    max_tokens: int = 256,
    seed: int | None = 0,
    json_mode: bool = False,
    cache_dir: str | None = None,
    min_note_score: float = 0.0,
    top_k_findings: int | None = 3,
    allow_veto: bool = False,
) -> OpenAIGenerator:
    """Build an :class:`OpenAIGenerator` from config.

    - ``base_url``: the endpoint up to ``/v1`` (vLLM ``http://localhost:8000/v1``, Ollama
      ``http://localhost:11434/v1``); ``/chat/completions`` is appended.
    - ``model``: the model name the server expects.
    - ``api_key_env``: name of the environment variable that holds the API key (the key itself never
      goes in the config); unset or empty variable = no auth header. ``api_key_header``:
      ``Authorization`` (sent as ``Bearer <key>``) or e.g. ``api-key`` for Azure OpenAI;
      ``api_version`` adds ``?api-version=`` to the URL.
    - ``timeout``: seconds per socket operation; ``max_retries``: extra attempts after a network error,
      timeout, 408/429 or 5xx; ``backoff``: first wait in seconds, doubled each retry.
    - ``max_concurrency``: requests in flight at once (thread pool size).
    - ``temperature`` (0 = greedy), ``max_tokens``, ``seed`` (null = not sent), ``json_mode``
      (send ``response_format = {"type": "json_object"}``, where the server supports it).
    - ``cache_dir``: folder for the disk cache (null = no cache).
    - ``min_note_score``: only requests with ``note_score`` at least this go to the model.
    - ``top_k_findings``: only the k best-scored findings of a note go to the model (null = all).
    - ``allow_veto``: when the model answers ``"error": false``, return ``veto=True`` so the component
      drops the finding; when false such findings are kept without a correction.
    """
    return OpenAIGenerator(
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        api_key_header=api_key_header,
        api_version=api_version,
        timeout=timeout,
        max_retries=max_retries,
        backoff=backoff,
        max_concurrency=max_concurrency,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        json_mode=json_mode,
        cache_dir=cache_dir,
        min_note_score=min_note_score,
        top_k_findings=top_k_findings,
        allow_veto=allow_veto,
    )
