"""A small, dependency-free client for OpenAI-compatible chat-completions endpoints.

Works with vLLM, llama.cpp / llama-cpp-python, Ollama, TGI's OpenAI route, OpenAI and Azure OpenAI (v1 API,
with ``api_key_header = "api-key"``). Only the standard library is used, so the runtime gets no new
dependency.

Note text goes only to the configured endpoint, and only to a loopback address unless the configuration
allows a remote one explicitly (``allow_remote``): a hospital must decide, in writing, where note text may go.
Failures never raise out of :meth:`ChatClient.complete`: network errors, timeouts, 408/409/425/429 and 5xx
are retried with exponential backoff (``Retry-After`` is honoured, up to ``max_retry_after`` seconds);
other 4xx are final. The counters (calls, prompt and completion tokens, failures) are thread-safe.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: HTTP statuses worth retrying (transient); any other 4xx is final.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class EndpointNotAllowed(ValueError):
    """The endpoint is not on this machine and the configuration did not allow a remote one."""


@dataclass(frozen=True)
class ChatReply:
    """One answer: the assistant text and the token usage the server reported (0 when it reported none)."""

    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class ChatFailure:
    """No answer after the allowed attempts; ``reason`` is one line without note text."""

    reason: str


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Final(Exception):
    pass


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (``localhost``, 127.0.0.0/8, ::1)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(base_url: str, allow_remote: bool) -> str:
    """The normalised base URL; raises for a non-http(s) URL or a remote host that is not allowed."""
    if urllib.parse.urlsplit(base_url or "").scheme not in ("http", "https"):
        raise ValueError(f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {base_url!r}")
    if not allow_remote and not is_loopback(base_url):
        host = urllib.parse.urlsplit(base_url).hostname
        raise EndpointNotAllowed(
            f"the verifier endpoint {host!r} is not on this machine: medcorr sends note text (patient data) to it, "
            "so a remote endpoint must be allowed explicitly with allow_remote = true in the verifier's config, "
            "after checking that your data agreement covers it")
    return base_url.rstrip("/")


class ChatClient:
    """POSTs chat-completions requests; see the module docstring for the failure policy."""

    def __init__(self, base_url: str, model: str, *, allow_remote: bool = False,
                 api_key_env: str | None = "OPENAI_API_KEY", api_key_header: str = "Authorization",
                 api_version: str | None = None, timeout: float = 60.0, max_retries: int = 2,
                 backoff: float = 1.0, max_retry_after: float = 60.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
        self.base_url = check_endpoint(base_url, allow_remote)
        self.model = model
        self.api_key_env = api_key_env
        self.api_key_header = api_key_header
        self.api_version = api_version
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_retry_after = float(max_retry_after)
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The chat-completions URL requests are POSTed to."""
        url = f"{self.base_url}/chat/completions"
        if self.api_version:
            url += "?" + urllib.parse.urlencode({"api-version": self.api_version})
        return url

    @property
    def host(self) -> str:
        """``host:port`` of the endpoint (for naming the source of a judgement)."""
        parts = urllib.parse.urlsplit(self.base_url)
        return parts.netloc

    def worst_case_seconds(self) -> float:
        """The longest one :meth:`complete` call can take: ``timeout`` per attempt plus the waits between
        attempts (the doubled backoff, or a ``Retry-After`` up to its cap, whichever is longer)."""
        waits = sum(max(self.backoff * 2 ** attempt, self.max_retry_after) for attempt in range(self.max_retries))
        return self.timeout * (self.max_retries + 1) + waits

    def encode(self, body: dict[str, Any]) -> bytes:
        """The bytes :meth:`complete` POSTs for ``body``: the body with the model added, as JSON."""
        return json.dumps({"model": self.model, "stream": False, **body}, ensure_ascii=False).encode("utf-8")

    def complete(self, body: dict[str, Any], request_id: str) -> ChatReply | ChatFailure:
        """The reply to ``body`` (model added), or a :class:`ChatFailure` once retries are spent."""
        data = self.encode(body)
        reason = "unknown"
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.calls += 1
            try:
                reply = self._post(data)
            except _Final as error:
                reason = str(error)
                break
            except _Transient as error:
                reason = str(error)
                logger.info("verifier request %s: attempt %d failed (%s)", request_id, attempt + 1, reason)
                if attempt < self.max_retries:
                    time.sleep(self._wait(attempt, error.retry_after))
                continue
            with self._lock:
                self.prompt_tokens += reply.prompt_tokens
                self.completion_tokens += reply.completion_tokens
            return reply
        with self._lock:
            self.failures += 1
        logger.warning("verifier request %s: no answer (%s)", request_id, reason)
        return ChatFailure(reason)

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff * (2 ** attempt)

    def headers(self) -> dict[str, str]:
        """The HTTP headers of a request (with the API key when its environment variable is set)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "medcorr"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            if self.api_key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {key}"
            else:
                headers[self.api_key_header] = key
        return headers

    def _post(self, data: bytes) -> ChatReply:
        request = urllib.request.Request(self.url, data=data, headers=self.headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            status, retry_after = error.code, _retry_after(error.headers.get("Retry-After") if error.headers else None)
            error.close()
            if status in RETRYABLE_STATUS or status >= 500:
                raise _Transient(f"HTTP {status}", retry_after) from None
            raise _Final(f"HTTP {status}") from None
        except urllib.error.URLError as error:
            inner = error.reason
            raise _Transient(type(inner).__name__ if isinstance(inner, BaseException) else "URLError") from None
        except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException, OSError) as error:
            raise _Transient(type(error).__name__) from None
        try:
            envelope = json.loads(raw.decode("utf-8"))
            content = envelope["choices"][0]["message"].get("content")
            usage = envelope.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Transient("malformed response envelope") from None
        return ChatReply(content if isinstance(content, str) else "", int(usage.get("prompt_tokens") or 0),
                         int(usage.get("completion_tokens") or 0))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (an HTTP date is ignored)."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
