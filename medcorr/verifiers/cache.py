"""A disk cache of verifier replies: one JSON file per sha256 key, written atomically."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CACHE_VERSION = 1


class ReplyCache:
    """Stores ``{"reply": str, "prompt_tokens": int, "completion_tokens": int}`` per key (None: no cache)."""

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory).expanduser() if directory else None

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None (missing, unreadable or of another version)."""
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("verifier cache entry %s unreadable, ignoring it", key[:12])
            return None
        if not isinstance(entry, dict) or entry.get("version") != CACHE_VERSION or entry.get("key") != key:
            return None
        return entry

    def put(self, key: str, reply: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Store a reply (temp file then rename); a failed write is logged, never raised."""
        path = self._path(key)
        if path is None:
            return
        entry = {"version": CACHE_VERSION, "key": key, "reply": reply, "prompt_tokens": prompt_tokens,
                 "completion_tokens": completion_tokens}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as tmp:
                json.dump(entry, tmp, ensure_ascii=False)
            os.replace(tmp_name, path)
        except OSError as error:
            logger.warning("verifier cache write for %s failed: %s", key[:12], type(error).__name__)
