"""``medcorr.KnowledgeGenerator.v1``: offline correction proposals from the lexicon and learned pairs.

Candidates for a finding's span come from (1) substitution pairs learned from training data (the same
wrong span was corrected to X before) and (2) lexicon siblings of the span's concept (same ICD-10-CM
category/block or MeSH branch for diagnoses, same drug class for drugs, same genus or common confusers for
organisms, same procedure group for management). Candidates are ranked by a prior (learned pairs first,
then lexicon closeness); with ``rescore_top > 0`` the best candidates are substituted into the note and
re-scored by the detector in one batched call, and a candidate that the detector finds less suspicious
moves up. Deterministic: the same note always gives the same proposals.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from medcorr.candidates import KINDS_FOR_TYPE
from medcorr.finding import ErrorType
from medcorr.generators.base import CorrectionRequest, Proposal, substitute_in_note
from medcorr.registry import generators
from medcorr.substitutions import SUBSTITUTIONS_FILE, SubstitutionTable, normalize

LEARNED_PRIOR = 1.0
LEXICON_PRIOR = 0.8


class KnowledgeGenerator:
    """Offline candidate generator; see the module docstring."""

    def __init__(self, top_k: int = 5, max_candidates: int = 20, rescore_top: int = 0,
                 detector_weight: float = 0.5, substitutions_path: str = ""):
        self.top_k = int(top_k)
        self.max_candidates = int(max_candidates)
        self.rescore_top = int(rescore_top)
        self.detector_weight = float(detector_weight)
        self._substitutions_path = substitutions_path
        self._table: SubstitutionTable | None = None
        self._lexicon = None
        self._component = None

    def bind(self, component: Any) -> None:
        """Called by the medcorr component: gives access to its detector and model directory."""
        self._component = component
        self._table = None

    @property
    def table(self) -> SubstitutionTable:
        """Learned substitution pairs (from the config path, else the model directory)."""
        if self._table is None:
            if self._substitutions_path:
                path = Path(self._substitutions_path)
            elif self._component is not None:
                path = self._component.detector.model_dir / SUBSTITUTIONS_FILE
            else:
                from medcorr.detector import default_model_dir

                path = default_model_dir() / SUBSTITUTIONS_FILE
            self._table = SubstitutionTable.load(path)
        return self._table

    @property
    def lexicon(self):
        """The shipped lexicon."""
        if self._lexicon is None:
            from medcorr.lexicon import Lexicon

            self._lexicon = Lexicon.load()
        return self._lexicon

    def candidates(self, span_text: str, error_type: ErrorType) -> list[tuple[str, float]]:
        """Ranked ``(replacement, prior)`` for a span, without the detector."""
        ranked: dict[str, tuple[str, float]] = {}
        own = normalize(span_text)

        def add(text: str, prior: float) -> None:
            key = normalize(text)
            if key and key != own and key not in ranked:
                ranked[key] = (text, prior)

        learned = self.table.candidates(error_type.value, span_text)
        for rank, (text, _count) in enumerate(learned):
            add(text, LEARNED_PRIOR - 0.01 * rank)
        found = self._add_siblings(span_text, KINDS_FOR_TYPE[error_type], add)
        if not found:  # e.g. a finding typed as a diagnosis whose span is an organism: its own kind's siblings
            self._add_siblings(span_text, tuple(self.lexicon.kinds_of(span_text.strip(" .,;:()"))), add)
        return sorted(ranked.values(), key=lambda item: (-item[1], item[0]))[: self.max_candidates]

    def _add_siblings(self, span_text: str, kinds: Sequence[str], add: Callable[[str, float], None]) -> bool:
        """Offer the lexicon siblings of the span's concept for each kind; True when a concept was found."""
        found = False
        for kind in kinds:
            term, prefix, suffix = self._concept_in(span_text, kind)
            if term is None:
                continue
            found = True
            siblings = self.lexicon.siblings(term, kind, limit=self.max_candidates)
            for rank, sibling in enumerate(siblings):
                name = _name(sibling)
                add(_agree_article(prefix, name) + name + suffix,
                    LEXICON_PRIOR * (1.0 - rank / (2 * self.max_candidates)))
        return found

    def _concept_in(self, span_text: str, kind: str) -> tuple[str | None, str, str]:
        """The longest lexicon term of ``kind`` inside the span, with the span text around it.

        A span like "a respiratory syncytial virus infection" is not itself a lexicon term; its concept
        "respiratory syncytial virus" is, and siblings replace just that part.
        """
        words = span_text.split()
        for size in range(len(words), 0, -1):
            for begin in range(0, len(words) - size + 1):
                term = " ".join(words[begin: begin + size]).strip(" .,;:()")
                if term and kind in self.lexicon.kinds_of(term):
                    before = " ".join(words[:begin])
                    after = " ".join(words[begin + size:])
                    return term, (before + " ") if before else "", (" " + after) if after else ""
        return None, "", ""

    def __call__(self, requests: Sequence[CorrectionRequest]) -> list[Proposal]:
        per_request = [self.candidates(r.finding.text, r.finding.type) for r in requests]
        if self.rescore_top > 0 and self._component is not None:
            per_request = self._rescore(requests, per_request)
        return [Proposal(candidates=[(t, round(s, 6)) for t, s in ranked[: self.top_k]]) for ranked in per_request]

    def _rescore(self, requests: Sequence[CorrectionRequest],
                 per_request: list[list[tuple[str, float]]]) -> list[list[tuple[str, float]]]:
        """Blend each prior with 1 - P(error) of the sentence after substitution (one detector call)."""
        notes, owners = [], []
        for index, (request, ranked) in enumerate(zip(requests, per_request)):
            finding = request.finding
            for text, _ in ranked[: self.rescore_top]:
                notes.append(substitute_in_note(request.note, request.sentences, finding.start, finding.end, text))
                owners.append((index, text))
        predictions = self._component.detector.predict(notes) if notes else []
        detector_scores: dict[tuple[int, str], float] = {}
        for (index, text), prediction in zip(owners, predictions):
            sentence = requests[index].finding.sentence
            detector_scores[(index, text)] = 1.0 - float(prediction.error[sentence])
        weight = self.detector_weight
        rescored = []
        for index, ranked in enumerate(per_request):
            blended = [(text, (1 - weight) * prior + weight * detector_scores[(index, text)])
                       if (index, text) in detector_scores else (text, (1 - weight) * prior)
                       for text, prior in ranked]
            rescored.append(sorted(blended, key=lambda item: (-item[1], item[0])))
        return rescored


def _agree_article(prefix: str, replacement: str) -> str:
    """``prefix`` with a trailing indefinite article fitted to ``replacement`` ("an ovarian torsion" ->
    "a volvulus"). The vowel-letter rule is approximate ("an MRI" stays wrong) but never worse than keeping
    the original article."""
    words = prefix.rstrip().rsplit(" ", 1)
    article = words[-1]
    if article.lower() not in ("a", "an") or not replacement:
        return prefix
    wanted = "an" if replacement[0].lower() in "aeiou" else "a"
    if article[0].isupper():
        wanted = wanted.capitalize()
    return (words[0] + " " if len(words) == 2 else "") + wanted + " "


def _name(sibling: Any) -> str:
    return sibling if isinstance(sibling, str) else str(getattr(sibling, "name", sibling))


@generators("medcorr.KnowledgeGenerator.v1")
def make_knowledge_generator(top_k: int = 5, max_candidates: int = 20, rescore_top: int = 0,
                             detector_weight: float = 0.5, substitutions_path: str = "") -> KnowledgeGenerator:
    """Registered factory of the offline generator (the component's default)."""
    return KnowledgeGenerator(top_k, max_candidates, rescore_top, detector_weight, substitutions_path)
