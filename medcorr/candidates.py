"""Find lexicon terms (candidate error spans) in a spaCy ``Doc``.

:class:`CandidateMatcher` matches every surface term of the shipped :class:`~medcorr.lexicon.Lexicon` with
spaCy's ``PhraseMatcher`` (``attr="LOWER"``, plus a case-sensitive ``ORTH`` matcher for acronyms such as
``COPD`` or ``MRSA``), keeps the longest non-overlapping matches and labels them with the medcorr error
types: diagnosis -> ``DIAGNOSIS``, drug -> ``PHARMACOTHERAPY``, organism -> ``CAUSAL_ORGANISM``, procedure ->
``MANAGEMENT``::

    import spacy
    from medcorr.candidates import CandidateMatcher

    nlp = spacy.blank("en")
    matcher = CandidateMatcher(nlp)
    for cand in matcher(nlp("Started amoxicillin for Neisseria gonorrhoeae urethritis.")):
        print(cand.text, cand.label, cand.kind)

Patterns are not built from spaCy ``Doc`` objects: the matcher feeds ``PhraseMatcher.add`` the hash
sequences of the pattern tokens directly, using the spaCy-English tokenisation stored in the lexicon file
(checked against the pipeline's tokenizer on a sample; a pipeline whose tokenizer disagrees gets its
non-trivial terms tokenised by its own tokenizer). Building the matcher for the whole lexicon therefore
takes a fraction of a second, and the compiled matcher is cached per process and shared by every
``CandidateMatcher`` with the same settings. Nothing heavy is serialised: :meth:`CandidateMatcher.to_config`
gives the few settings a component needs to rebuild it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from spacy.matcher import PhraseMatcher
from spacy.strings import hash_string
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from medcorr.finding import ErrorType
from medcorr.gc_pause import paused_gc
from medcorr.lexicon import KINDS, Lexicon, LexiconEntry

__all__ = [
    "KIND_LABELS",
    "KIND_PRIORITY",
    "KINDS_FOR_TYPE",
    "Candidate",
    "CandidateMatcher",
    "candidates_by_label",
    "kind_for_label",
    "label_for_kind",
    "types_for_kind",
]

#: Lexicon kind -> medcorr error type.
KIND_LABELS: dict[str, ErrorType] = {
    "diagnosis": ErrorType.DIAGNOSIS,
    "drug": ErrorType.PHARMACOTHERAPY,
    "organism": ErrorType.CAUSAL_ORGANISM,
    "procedure": ErrorType.MANAGEMENT,
}
#: Lexicon kinds that can state the claim of each error type, in search order (a treatment is a drug or a
#: procedure; a management step is usually a procedure, sometimes a drug).
KINDS_FOR_TYPE: dict[ErrorType, tuple[str, ...]] = {
    ErrorType.DIAGNOSIS: ("diagnosis",),
    ErrorType.CAUSAL_ORGANISM: ("organism",),
    ErrorType.PHARMACOTHERAPY: ("drug",),
    ErrorType.TREATMENT: ("drug", "procedure"),
    ErrorType.MANAGEMENT: ("procedure", "drug"),
}
#: When one span is a term of several kinds, the label of the first kind here wins.
KIND_PRIORITY: tuple[str, ...] = ("organism", "drug", "procedure", "diagnosis")

#: Phrases whose words would otherwise match a term with another sense ("ST depression" is an ECG
#: finding, not the mood disorder). They take part in the longest-match selection and are then dropped.
BLOCKING_PHRASES: tuple[str, ...] = (
    "st depression", "st-segment depression", "st segment depression", "st segment depressions",
    "pr depression", "pr-segment depression", "pr segment depression", "st depressions",
    "respiratory depression",  # kept as a diagnosis below only if the lexicon has it; blocks "depression"
    "blood pressure", "blood glucose", "blood cultures", "blood culture", "blood count",
    "lead level", "cold extremities", "cold intolerance",
)

_BLOCK_KEY = "__medcorr_block__"
_SAMPLE_SIZE = 400
_DEFAULT_SPANS_KEY = "medcorr_candidates"


def label_for_kind(kind: str) -> ErrorType:
    """The medcorr error type of a lexicon kind."""
    try:
        return KIND_LABELS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}") from None


def types_for_kind(kind: str) -> tuple[ErrorType, ...]:
    """The error types whose claim a term of ``kind`` can state (an organism is only a causal organism)."""
    return tuple(error_type for error_type, kinds in KINDS_FOR_TYPE.items() if kind in kinds)


def kind_for_label(label: str | ErrorType) -> str | None:
    """The lexicon kind of a medcorr label, or None for labels no kind maps to (``TREATMENT``)."""
    value = label.value if isinstance(label, ErrorType) else str(label)
    for kind, error_type in KIND_LABELS.items():
        if error_type.value == value:
            return kind
    return None


@dataclass(frozen=True)
class Candidate:
    """A matched lexicon span.

    ``kind`` is the winning kind (see :data:`KIND_PRIORITY`), ``kinds`` all kinds the span is a term of,
    ``entries`` the lexicon entries of the winning kind for this surface form.
    """

    span: Span
    kind: str
    kinds: tuple[str, ...]
    entries: tuple[LexiconEntry, ...]

    @property
    def label(self) -> str:
        """The medcorr label (``"DIAGNOSIS"``, ``"PHARMACOTHERAPY"`` ...)."""
        return KIND_LABELS[self.kind].value

    @property
    def error_type(self) -> ErrorType:
        """The medcorr :class:`~medcorr.finding.ErrorType`."""
        return KIND_LABELS[self.kind]

    @property
    def text(self) -> str:
        """The span's text as written in the note."""
        return self.span.text

    @property
    def start_char(self) -> int:
        """Character offset of the span start in the note."""
        return self.span.start_char

    @property
    def end_char(self) -> int:
        """Character offset of the span end in the note."""
        return self.span.end_char

    @property
    def entry(self) -> LexiconEntry | None:
        """The most prominent entry for this span (None only for a lexicon/matcher mismatch)."""
        return self.entries[0] if self.entries else None


@dataclass
class _Compiled:
    lower: PhraseMatcher
    orth: PhraseMatcher
    n_patterns: int
    mode: str


_CACHE: dict[tuple, tuple[Any, _Compiled]] = {}
_CACHE_LOCK = threading.Lock()


def _simple_words(term: str, special: frozenset[str]) -> list[str] | None:
    """``term.split()`` when every word is plain letters or plain digits and no tokenizer special case."""
    words = term.split()
    for word in words:
        if not (word.isalpha() or word.isdigit()) or word in special:
            return None
    return words


def _special_cases(tokenizer: Any) -> frozenset[str]:
    rules = getattr(tokenizer, "rules", None) or {}
    return frozenset(key.lower() for key in rules)


def _english_tokens_agree(tokenizer: Any, lexicon: Lexicon) -> bool:
    """Whether ``tokenizer`` splits the lexicon's non-trivial terms like the spaCy English tokenizer did."""
    special = _special_cases(tokenizer)
    with_tokens = sorted(lexicon.tokenized.items())
    step = max(1, len(with_tokens) // _SAMPLE_SIZE)
    sample = with_tokens[::step][:_SAMPLE_SIZE]
    plain = []
    for term, _ in lexicon.surface_terms(include_symptoms=True):
        if term not in lexicon.tokenized and _simple_words(term, special) is None:
            plain.append(term)
            if len(plain) >= _SAMPLE_SIZE // 2:
                break
    expected = [(term, tokens.split(" ")) for term, tokens in sample]
    expected += [(term, term.split(" ")) for term in plain]
    if not expected:
        return True
    for (term, tokens), doc in zip(expected, tokenizer.pipe(t for t, _ in expected)):
        if [t.text for t in doc] != tokens:
            return False
    return True


def _compile(lexicon: Lexicon, tokenizer: Any, kinds: tuple[str, ...], include_symptoms: bool,
             mode: str) -> _Compiled:
    """Build the LOWER and ORTH phrase matchers from the lexicon's terms (hash sequences, no Docs)."""
    vocab = Vocab()
    lower = PhraseMatcher(vocab, attr="LOWER")
    orth = PhraseMatcher(vocab, attr="ORTH")
    special = _special_cases(tokenizer)
    use_stored = mode == "en"

    lower_patterns: dict[str, set[tuple[int, ...]]] = {kind: set() for kind in kinds}
    orth_patterns: dict[str, set[tuple[int, ...]]] = {kind: set() for kind in kinds}
    pending: list[tuple[str, str]] = []  # (kind, text) to tokenise with the pipeline's tokenizer

    def add_lower(kind: str, term: str) -> None:
        words = _simple_words(term, special)
        if words is None and use_stored:
            stored = lexicon.tokenized.get(term)
            words = stored.split(" ") if stored is not None else term.split(" ")
        if words is None:
            pending.append((kind, term))
        else:
            lower_patterns[kind].add(tuple(map(hash_string, words)))

    for term, entry in lexicon.surface_terms(kinds, include_symptoms):
        add_lower(entry.kind, term)
        if "-" in term:  # "non-hodgkin" is also written "non hodgkin"
            spaced = " ".join(term.replace("-", " ").split())
            if spaced and spaced != term:
                add_lower(entry.kind, spaced)
    acronym_pending: list[tuple[str, str]] = []
    for acronym, entry in lexicon.surface_acronyms(kinds, include_symptoms):
        if acronym.isalnum():
            orth_patterns[entry.kind].add((hash_string(acronym),))
        else:
            acronym_pending.append((entry.kind, acronym))
    if pending:
        for (kind, term), doc in zip(pending, tokenizer.pipe(t for _, t in pending)):
            lower_patterns[kind].add(tuple(hash_string(t.text.lower()) for t in doc))
    if acronym_pending:
        for (kind, acronym), doc in zip(acronym_pending, tokenizer.pipe(a for _, a in acronym_pending)):
            orth_patterns[kind].add(tuple(hash_string(t.text) for t in doc))

    blocking: set[tuple[int, ...]] = set()
    for (phrase, doc) in zip(BLOCKING_PHRASES, tokenizer.pipe(BLOCKING_PHRASES)):
        blocking.add(tuple(hash_string(t.text.lower()) for t in doc))
    for kind in kinds:
        blocking -= lower_patterns[kind]  # a real term always wins over a blocking phrase
    if blocking:
        lower.add(_BLOCK_KEY, list(blocking))

    n_patterns = 0
    for kind in kinds:
        # PhraseMatcher.add takes attribute-hash sequences as well as Docs (no Doc/lexeme creation here)
        if lower_patterns[kind]:
            lower.add(kind, list(lower_patterns[kind]))
        if orth_patterns[kind]:
            orth.add(kind, list(orth_patterns[kind]))
        n_patterns += len(lower_patterns[kind]) + len(orth_patterns[kind])
    return _Compiled(lower=lower, orth=orth, n_patterns=n_patterns, mode=mode)


class CandidateMatcher:
    """Finds lexicon terms in Docs and labels them with medcorr error types.

    ``nlp`` is the pipeline (or just its tokenizer holder) whose Docs will be matched: its tokenizer is
    used to verify, and if needed redo, the tokenisation of multi-token terms. ``lexicon`` defaults to the
    packaged one. ``kinds`` limits the kinds matched; ``include_symptoms`` also matches sign/symptom
    diagnoses (fever, cough, chest pain ...), which are left out by default because they occur in nearly
    every note. Construction is cheap after the first matcher of a process with the same settings.
    """

    def __init__(self, nlp: Any, lexicon: Lexicon | None = None, *, kinds: Iterable[str] | None = None,
                 include_symptoms: bool = False) -> None:
        self.lexicon = lexicon if lexicon is not None else Lexicon.load()
        self.kinds: tuple[str, ...] = tuple(k for k in KINDS if kinds is None or k in set(kinds))
        if kinds is not None:
            unknown = set(kinds) - set(KINDS)
            if unknown:
                raise ValueError(f"unknown kinds {sorted(unknown)}; expected some of {KINDS}")
        self.include_symptoms = bool(include_symptoms)
        tokenizer = getattr(nlp, "tokenizer", nlp)
        self._compiled = self._shared(self.lexicon, tokenizer, self.kinds, self.include_symptoms)

    @staticmethod
    def _shared(lexicon: Lexicon, tokenizer: Any, kinds: tuple[str, ...], include_symptoms: bool) -> _Compiled:
        """The compiled matchers for these settings, built once per process."""
        with _CACHE_LOCK, paused_gc():
            agree_key = ("agree", id(lexicon), id(tokenizer))
            cached = _CACHE.get(agree_key)
            if cached is None or cached[0] is not tokenizer:
                agrees = _english_tokens_agree(tokenizer, lexicon)
                _CACHE[agree_key] = (tokenizer, agrees)
            else:
                agrees = cached[1]
            mode = "en" if agrees else f"tokenizer:{id(tokenizer)}"
            key = ("compiled", id(lexicon), mode, kinds, include_symptoms)
            cached = _CACHE.get(key)
            if cached is None or cached[0] is not lexicon:
                compiled = _compile(lexicon, tokenizer, kinds, include_symptoms, mode)
                # keep the lexicon (and a foreign tokenizer) alive so the ids in the key stay unique
                _CACHE[key] = (lexicon, compiled)
                if not agrees:
                    _CACHE[("keep", id(tokenizer))] = (tokenizer, None)
            return _CACHE[key][1]

    @classmethod
    def clear_cache(cls) -> None:
        """Forget the compiled matchers (tests, or after loading a different lexicon file)."""
        with _CACHE_LOCK:
            _CACHE.clear()

    @property
    def n_patterns(self) -> int:
        """Number of distinct token patterns compiled."""
        return self._compiled.n_patterns

    @property
    def tokenization_mode(self) -> str:
        """``"en"`` when the stored spaCy-English tokenisation was used, else the pipeline tokenizer's."""
        return self._compiled.mode

    def to_config(self) -> dict[str, Any]:
        """The settings needed to rebuild this matcher (nothing heavy: it rebuilds from the lexicon)."""
        return {
            "kinds": list(self.kinds),
            "include_symptoms": self.include_symptoms,
            "lexicon": str(self.lexicon.path) if self.lexicon.path is not None else None,
        }

    @classmethod
    def from_config(cls, nlp: Any, config: dict[str, Any]) -> "CandidateMatcher":
        """Inverse of :meth:`to_config`; ``lexicon: None`` means the packaged lexicon."""
        path = config.get("lexicon")
        lexicon = Lexicon.load(path) if path and path != str(Lexicon.load().path) else Lexicon.load()
        return cls(nlp, lexicon, kinds=config.get("kinds"), include_symptoms=config.get("include_symptoms", False))

    # -------------------------------------------------------------------------------------------- matching
    def __call__(self, doc: Doc | Span) -> list[Candidate]:
        """Longest non-overlapping lexicon matches in ``doc`` (or a span of it), in text order."""
        if len(doc) == 0:
            return []
        found: dict[tuple[int, int], set[str]] = {}
        strings = self._compiled.lower.vocab.strings
        for matcher in (self._compiled.lower, self._compiled.orth):
            for match_id, start, end in matcher(doc):
                found.setdefault((start, end), set()).add(strings[match_id])
        if not found:
            return []
        base = doc.doc if isinstance(doc, Span) else doc
        # longest first, then earliest: a greedy pass keeps the longest non-overlapping spans
        chosen: list[tuple[int, int]] = []
        taken: set[int] = set()
        for start, end in sorted(found, key=lambda se: (se[0] - se[1], se[0])):
            if any(i in taken for i in range(start, end)):
                continue
            chosen.append((start, end))
            taken.update(range(start, end))
        out: list[Candidate] = []
        for start, end in sorted(chosen):
            kinds = tuple(k for k in KIND_PRIORITY if k in found[(start, end)])
            if not kinds:  # a blocking phrase
                continue
            span = base[start:end]
            entries: tuple[LexiconEntry, ...] = ()
            kind = kinds[0]
            for candidate_kind in kinds:
                matched = self._entries(span.text, candidate_kind)
                if matched:
                    kind, entries = candidate_kind, tuple(matched)
                    break
            label = KIND_LABELS[kind].value
            kb_id = entries[0].id if entries else ""
            out.append(Candidate(span=Span(base, start, end, label=label, kb_id=kb_id), kind=kind,
                                 kinds=tuple(k for k in KINDS if k in kinds), entries=entries))
        return out

    def _entries(self, text: str, kind: str) -> list[LexiconEntry]:
        entries = self.lexicon.entries_for(text, kind)
        if not self.include_symptoms:
            entries = [e for e in entries if not e.symptom]
        return entries

    def spans(self, doc: Doc | Span) -> list[Span]:
        """The matches as spaCy spans: ``label_`` is the medcorr label, ``kb_id_`` the lexicon entry id."""
        return [candidate.span for candidate in self(doc)]

    def set_spans(self, doc: Doc, key: str = _DEFAULT_SPANS_KEY) -> Doc:
        """Store the matches in ``doc.spans[key]`` and return ``doc``."""
        doc.spans[key] = self.spans(doc)
        return doc

    def pipe(self, docs: Iterable[Doc]) -> list[list[Candidate]]:
        """Candidates for each doc of ``docs``."""
        return [self(doc) for doc in docs]


def candidates_by_label(candidates: Sequence[Candidate]) -> dict[str, list[Candidate]]:
    """Group candidates by medcorr label, keeping text order."""
    out: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        out.setdefault(candidate.label, []).append(candidate)
    return out
