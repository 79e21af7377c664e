"""Scripted OpenAI-compatible chat servers for verifier tests (stdlib only, on 127.0.0.1).

:class:`StubServer` answers each POST from a ``script(body, call_index) -> (status, content[, headers])``
and records bodies, headers and the most requests in flight at once. :class:`HangingServer` accepts
connections and never answers. :func:`note_sentences` and :func:`checked_sentences` read the numbered
note and the sentences to check back out of a verifier prompt, so scripts can answer like a model would.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Script = Callable[[dict[str, Any], int], tuple]


class _Server(ThreadingHTTPServer):
    # http.server's listen backlog is 5: a burst of more connections than that waits out a SYN retry (about
    # 1 s), which a real model server's backlog would not make it do
    request_queue_size = 128


class StubServer:
    """A scripted chat-completions server; ``delay`` seconds per request; usage reported as word counts."""

    def __init__(self, script: Script, delay: float = 0.0) -> None:
        self.script = script
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with stub._lock:
                    index = len(stub.bodies)
                    stub.bodies.append(body)
                    stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                    stub.paths.append(self.path)
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    if stub.delay:
                        time.sleep(stub.delay)
                    status, content, *extra = stub.script(body, index)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1
                if status == 200:
                    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                    data = json.dumps({
                        "id": f"cmpl-{index}", "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": prompt_words, "completion_tokens": len(content.split())},
                    }).encode()
                else:
                    data = json.dumps({"error": {"message": content}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def calls(self) -> int:
        return len(self.bodies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class HangingServer:
    """Accepts TCP connections and reads the request, but never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        self.sock.close()


def user_prompt(body: dict[str, Any]) -> str:
    """The first user message of a chat body."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def note_sentences(body: dict[str, Any]) -> list[str]:
    """The numbered sentences of the note under review, in order."""
    section = user_prompt(body).split("Note to review:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split(" ", 1)[1] if " " in line else "" for line in section.split("\n")]


def checked_sentences(body: dict[str, Any]) -> list[int]:
    """The sentence numbers the prompt asks to check."""
    section = user_prompt(body).split("Sentences to check", 1)[1].split("\n\n", 1)[0]
    return [int(n) for n in re.findall(r"^- sentence (\d+):", section, flags=re.M)]


def answer(error: bool, sentence: int = -1, corrected: str = "", rationale: str = "scripted") -> str:
    """A well-formed verifier answer."""
    return json.dumps({"error": error, "sentence": sentence, "corrected_sentence": corrected, "rationale": rationale})
