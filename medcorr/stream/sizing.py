"""How long ``medcorr stream`` may go without polling Kafka when its pipeline has a verifier.

The loop polls Kafka only between batches: while the pipeline works on a pipe batch, and in particular
while a language-model verifier waits for its endpoint, the main thread does not call ``poll()``.
kafka-python's background thread keeps sending heartbeats meanwhile, so ``session_timeout_ms`` does not
limit a slow verifier; ``max_poll_interval_ms`` does: when ``poll()`` is not called for that long, the
heartbeat thread leaves the group, the partitions go to another member (or back to this one after a
rejoin), and the batch in hand can no longer be committed (it is redone: duplicates, never a gap; but a
verifier that is always that slow would loop like this forever).

Between two polls the pipeline runs at most ``ceil(batch_size / pipe_batch) + 1`` verifier calls (one
Kafka batch of notes, plus the pipe batch read ahead), each on at most ``pipe_batch`` notes (one note per
input message; a Bundle of several DocumentReferences counts as several notes). The verifier bounds one
call itself (``worst_case_seconds(notes)``: for a chat verifier, ``ceil(notes x samples /
max_concurrency)`` rounds of two questions in a row, each its client's timeouts, retries and waits).
:func:`poll_budget` computes that bound plus
:data:`MARGIN_S` for the model, delivery and commit; the connector refuses a ``max_poll_interval_ms``
set below it, and raises kafka-python's default to it when the setting is not given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medcorr.pipeline import verifier_of
from medcorr.verifiers.base import worst_case_seconds

#: Seconds added to the verifier's worst case for the model, the FHIR mapping, delivery and commit.
MARGIN_S = 60.0
#: kafka-python's (and Kafka's) default ``max_poll_interval_ms``.
KAFKA_DEFAULT_MAX_POLL_INTERVAL_MS = 300_000


@dataclass(frozen=True)
class PollBudget:
    """What a verifier may cost between two polls, and the ``max_poll_interval_ms`` that covers it."""

    verifier: str
    calls: int
    notes_per_call: int
    #: worst seconds of one call (None: the verifier cannot be bounded)
    call_s: float | None

    @property
    def worst_s(self) -> float | None:
        """Worst seconds of verifier work between two polls."""
        return None if self.call_s is None else self.calls * self.call_s

    @property
    def needed_ms(self) -> int | None:
        """The smallest ``max_poll_interval_ms`` that covers :attr:`worst_s` plus :data:`MARGIN_S`."""
        worst = self.worst_s
        return None if worst is None else int(math.ceil((worst + MARGIN_S) * 1000))

    def describe(self) -> str:
        """One line: the calls, their notes and their worst case."""
        if self.call_s is None:
            return (f"up to {self.calls} calls of verifier {self.verifier} on up to {self.notes_per_call} notes "
                    "each, of unknown worst case")
        return (f"up to {self.calls} verifier calls on up to {self.notes_per_call} notes each, up to "
                f"{self.call_s:.0f}s each, {self.worst_s:.0f}s in all, + {MARGIN_S:.0f}s margin")


def poll_budget(nlp: Any, batch_size: int, pipe_batch: int) -> PollBudget | None:
    """The verifier's work between two polls for Kafka batches of ``batch_size`` messages and ``nlp.pipe``
    batches of ``pipe_batch`` notes; None when the pipeline has no verifier."""
    verifier = verifier_of(nlp)
    if verifier is None:
        return None
    pipe_batch = max(1, min(int(pipe_batch), int(batch_size)))
    calls = math.ceil(batch_size / pipe_batch) + 1
    name = str(getattr(verifier, "name", type(verifier).__name__))
    return PollBudget(name, calls, pipe_batch, worst_case_seconds(verifier, pipe_batch))
