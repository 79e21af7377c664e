"""Progress of one long ``medcorr check`` on stderr: how many of the note's encoder windows the model has done.

Shown only when stderr is a terminal and the check has run for a second (``--progress auto``, the default),
or always (``--progress always``: on a terminal one updating line, otherwise a line every few seconds), or
never. Standard output is never touched, so ``--json`` output stays one clean object. Only counts and times
are written, never note text.
"""
from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TextIO

PROGRESS_MODES: tuple[str, ...] = ("auto", "always", "never")
#: ``auto``: nothing is shown for checks shorter than this (seconds).
AUTO_DELAY_S = 1.0
#: Seconds between two updates on a terminal, and between two lines elsewhere.
TTY_INTERVAL_S = 0.2
LINE_INTERVAL_S = 5.0


class WindowProgress:
    """Writes ``medcorr check: model windows 12/50 (24%), 3.1 s`` to ``stream`` (thread-safe)."""

    def __init__(self, stream: TextIO, *, interactive: bool, delay_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interactive = interactive
        self.delay_s = delay_s
        self.clock = clock
        self.started = clock()
        self.shown = False
        self._last_write = -float("inf")
        self._last: tuple[int, int] | None = None
        self._last_written: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _line(self, done: int, total: int) -> str:
        percent = 100 * done // total if total else 100
        return f"medcorr check: model windows {done}/{total} ({percent}%), {self.clock() - self.started:.1f} s"

    def update(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` windows are finished; writes when an update is due."""
        with self._lock:
            self._last = (done, total)
            now = self.clock()
            if now - self.started < self.delay_s:
                return
            interval = TTY_INTERVAL_S if self.interactive else LINE_INTERVAL_S
            if self.shown and now - self._last_write < interval and done < total:
                return
            self._write(done, total)
            self._last_write = now

    def _write(self, done: int, total: int) -> None:
        if self.interactive:
            self.stream.write("\r" + self._line(done, total) + "\033[K")
        else:
            self.stream.write(self._line(done, total) + "\n")
        self.stream.flush()
        self.shown = True
        self._last_written = (done, total)

    def close(self) -> None:
        """End the display: the last count on its own line (only if anything was shown)."""
        with self._lock:
            if not self.shown:
                return
            if self.interactive:
                self.stream.write("\r" + self._line(*self._last) + "\033[K\n")
            elif self._last != self._last_written:
                self.stream.write(self._line(*self._last) + "\n")
            self.stream.flush()


def wants_progress(mode: str, stream: TextIO) -> bool:
    """Whether ``mode`` (``auto``/``always``/``never``) shows progress on ``stream``."""
    if mode == "never":
        return False
    if mode == "always":
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _detector_of(nlp: Any) -> Any:
    """The detector of the pipeline's medcorr component if it reports progress, else None."""
    for _, component in getattr(nlp, "pipeline", []):
        detector = getattr(component, "detector", None)
        if detector is not None and hasattr(detector, "progress"):
            return detector
    return None


@contextmanager
def check_progress(nlp: Any, mode: str = "auto", stream: TextIO | None = None) -> Iterator[WindowProgress | None]:
    """Show the model's progress on ``stream`` (stderr) while the block runs ``nlp`` on one note.

    Yields the :class:`WindowProgress` in use, or None when nothing is shown (mode, no terminal, or a
    pipeline whose detector does not report progress).
    """
    stream = sys.stderr if stream is None else stream
    detector = _detector_of(nlp)
    if detector is None or not wants_progress(mode, stream):
        yield None
        return
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    progress = WindowProgress(stream, interactive=interactive, delay_s=AUTO_DELAY_S if mode == "auto" else 0.0)
    previous, detector.progress = detector.progress, progress.update
    try:
        yield progress
    finally:
        detector.progress = previous
        progress.close()
