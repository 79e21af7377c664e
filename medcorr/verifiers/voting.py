"""``medcorr.VotingVerifier.v1``: a majority over several verifiers (different models or endpoints).

Each member judges every note (members run side by side). Per note, the members that answered vote for
"no error" or "error in sentence s"; the option with a strict majority of the answers wins, provided at
least ``quorum`` members answered. A tie, or too few answers, leaves the note ``unverified`` with the
votes in the reason; it is never turned into "no error". The winning members' first finding (its span and
corrected sentence) becomes the asserted error, with the vote share as confidence.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Dict, Mapping, Optional, Sequence

from medcorr.evidence import Judgement
from medcorr.finding import Evidence, SourceKind
from medcorr.registry import verifiers
from medcorr.verifiers.base import VerificationRequest, Verifier, notes_in_flight, worst_case_seconds


class VotingVerifier:
    """Majority vote of ``members`` (name -> verifier); ``quorum`` answers needed (default: a majority of
    the members)."""

    def __init__(self, members: Mapping[str, Verifier], quorum: int | None = None) -> None:
        if not members:
            raise ValueError("a VotingVerifier needs at least one member verifier")
        self.members = dict(members)
        self.quorum = len(self.members) // 2 + 1 if quorum is None else int(quorum)
        if not 1 <= self.quorum <= len(self.members):
            raise ValueError(f"quorum must be between 1 and {len(self.members)}, got {quorum}")
        self.name = f"medcorr.VotingVerifier.v1 ({', '.join(self.members)})"

    def stats(self) -> dict[str, int]:
        """The members' counters, summed."""
        total: Counter = Counter()
        for member in self.members.values():
            total.update(member.stats())
        return dict(total)

    @property
    def notes_in_flight(self) -> int:
        """The most notes any member can have in flight (every member is asked about every note)."""
        return max(notes_in_flight(member) for member in self.members.values())

    def worst_case_seconds(self, notes: int) -> float | None:
        """The longest one call on ``notes`` notes can take (the members are asked side by side: the
        slowest member's bound), or None when a member cannot bound its own."""
        bounds = [worst_case_seconds(member, notes) for member in self.members.values()]
        return None if any(bound is None for bound in bounds) else max(bounds)  # type: ignore[type-var]

    def __call__(self, requests: Sequence[VerificationRequest]) -> list[Judgement]:
        requests = list(requests)
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=len(self.members), thread_name_prefix="medcorr-vote") as pool:
            results = list(pool.map(lambda member: member(requests), self.members.values()))
        return [self._vote([result[index] for result in results]) for index in range(len(requests))]

    def _vote(self, judgements: list[Judgement]) -> Judgement:
        answered = [j for j in judgements if j.error is not None]
        votes = Counter(map(_option_key, answered))
        described = ", ".join(f"{name}: {_option(j)}" for name, j in zip(self.members, judgements))
        if len(answered) < self.quorum:
            return Judgement(Evidence(SourceKind.VERIFIER, self.name,
                                      reason=f"{len(answered)} of {len(judgements)} verifiers answered, "
                                             f"{self.quorum} needed ({described})"), error=None)
        (error, sentence), count = votes.most_common(1)[0]
        if count * 2 <= len(answered):
            return Judgement(Evidence(SourceKind.VERIFIER, self.name, reason=f"no majority ({described})"), error=None)
        share = count / len(answered)
        winners = [j for j in answered if _option_key(j) == (error, sentence)]
        evidence = Evidence(SourceKind.VERIFIER, self.name, confidence=share, reason=f"majority {count} of "
                            f"{len(answered)} ({described}); {winners[0].evidence.reason}".strip("; "),
                            measured="; ".join(sorted({j.evidence.measured for j in winners if j.evidence.measured})))
        if not error:
            return Judgement(evidence, error=False, score=1.0 - share)
        lead = winners[0].findings[0]
        finding = replace(lead, score=share, evidence=[evidence])  # the correction keeps its member as source
        return Judgement(evidence, error=True, score=share, findings=[finding])


def _option_key(judgement: Judgement) -> tuple[bool, int]:
    """What an answered judgement votes for: (error, its sentence), or (False, -1) for "no error"."""
    return bool(judgement.error), judgement.findings[0].sentence if judgement.error and judgement.findings else -1


def _option(judgement: Judgement) -> str:
    if judgement.error is None:
        return "failed"
    if judgement.error:
        return f"error in sentence {judgement.findings[0].sentence}" if judgement.findings else "error"
    return "no error"


@verifiers("medcorr.VotingVerifier.v1")
def make_voting_verifier(verifiers: Dict[str, Any], quorum: Optional[int] = None) -> VotingVerifier:  # noqa: F811
    """Build a :class:`VotingVerifier` (config types are ``typing`` aliases: spaCy's config validation reads
    the annotations at run time); in a ``.cfg``, declare ``[components.medcorr.verifier.verifiers]`` and
    each member as a sub-block ``[components.medcorr.verifier.verifiers.NAME]`` with its own
    ``@medcorr_verifiers``."""
    return VotingVerifier(verifiers, quorum)
