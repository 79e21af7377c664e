"""Prompt building, strict reply parsing and cascade selection shared by the LLM correction backends.

Both :mod:`medcorr.generators.openai` (any OpenAI-compatible chat endpoint) and
:mod:`medcorr.generators.transformers_gen` (a local Hugging Face model) use the same messages and the
same parser, so a model answers the same question whichever way it is served.

The model is asked for exactly one JSON object::

    {"error": true, "corrected_span": "...", "corrected_sentence": "..."}
    {"error": false, "corrected_span": null, "corrected_sentence": null}

:func:`parse_reply` takes the first JSON object out of the reply and validates its types; anything else
is ``None`` ("no proposal"), which the backends retry once with :data:`REMINDER` and then report as an
empty :class:`~medcorr.generators.base.Proposal`. Nothing here raises on a bad reply.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

from medcorr.finding import ErrorType
from medcorr.generators.base import CorrectionRequest, Proposal, substitute

SYSTEM_PROMPT = (
    "You are a careful clinical documentation reviewer. You check one suspected medical error in a "
    "clinical note and answer with a single JSON object and nothing else."
)

_TYPE_WORDS: dict[ErrorType, str] = {
    ErrorType.DIAGNOSIS: "diagnosis",
    ErrorType.MANAGEMENT: "management",
    ErrorType.TREATMENT: "treatment",
    ErrorType.PHARMACOTHERAPY: "pharmacotherapy",
    ErrorType.CAUSAL_ORGANISM: "causal organism",
}

REMINDER = (
    "Your previous reply was not a valid answer. Reply with only one JSON object with exactly these "
    'keys: {"error": true or false, "corrected_span": string or null, "corrected_sentence": string or '
    "null}. When error is true, corrected_span must be the corrected text of the span. No other text."
)

#: Score given to the single candidate an LLM proposes (it reports no probability of its own).
LLM_CANDIDATE_SCORE = 1.0


@dataclass(frozen=True)
class ParsedReply:
    """A validated model answer: ``error`` and, when it is True, the corrected span (and sentence)."""

    error: bool
    corrected_span: str | None = None
    corrected_sentence: str | None = None


def _one_line(text: str) -> str:
    """Collapse all whitespace (newlines included) so that one sentence is one prompt line."""
    return " ".join(text.split())


def format_note(request: CorrectionRequest) -> str:
    """The note as numbered sentences, one per line: ``[0] First sentence.`` ..."""
    lines = []
    for index, (start, end) in enumerate(request.sentences):
        lines.append(f"[{index}] {_one_line(request.note[start:end])}")
    return "\n".join(lines)


def build_user_prompt(request: CorrectionRequest) -> str:
    """The user message for one request: numbered note, the finding, and the JSON answer format."""
    finding = request.finding
    type_word = _TYPE_WORDS.get(finding.type, str(finding.type.value).lower())
    return (
        "Clinical note (one sentence per line, each with its sentence id):\n"
        f"{format_note(request)}\n\n"
        "Suspected error:\n"
        f"- sentence id: {finding.sentence}\n"
        f"- span: {json.dumps(_one_line(finding.text), ensure_ascii=False)}\n"
        f"- error type: {type_word}\n\n"
        "Is this span a clinical error (a wrong diagnosis, management, treatment, pharmacotherapy or "
        "causal organism given the rest of the note)? If it is, give the corrected text for the span "
        "and the whole corrected sentence.\n"
        "Answer with only one JSON object, no other text. When the span is an error:\n"
        '{"error": true, "corrected_span": "<corrected span text>", '
        '"corrected_sentence": "<the corrected sentence>"}\n'
        "When the span is correct:\n"
        '{"error": false, "corrected_span": null, "corrected_sentence": null}'
    )


def build_messages(request: CorrectionRequest) -> list[dict[str, str]]:
    """Chat messages (system + user) for one request."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": build_user_prompt(request)},
    ]


def retry_messages(messages: Sequence[dict[str, str]], bad_reply: str) -> list[dict[str, str]]:
    """The messages for the one retry after an unparseable reply: the exchange so far plus a reminder."""
    return [*messages, {"role": "assistant", "content": bad_reply}, {"role": "user", "content": REMINDER}]


def render_plain(messages: Sequence[dict[str, str]]) -> str:
    """A plain-text rendering of chat messages, for models without a chat template."""
    parts = [f"{message['role'].capitalize()}: {message['content']}" for message in messages]
    return "\n\n".join(parts) + "\n\nAssistant:"


def prompt_key(model: str, messages: Sequence[dict[str, str]]) -> str:
    """sha256 (hex) of the model name and the exact prompt; the disk-cache key and the log id."""
    payload = json.dumps({"model": model, "messages": list(messages)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def extract_first_json_object(text: str) -> str | None:
    """The first balanced ``{...}`` in ``text`` that is valid JSON, or None.

    Braces inside JSON strings are skipped, so ``{"a": "}"}`` is one object. A candidate that starts at
    a ``{`` but does not parse is skipped and the search goes on from the next ``{``.
    """
    start = text.find("{")
    while start != -1:
        depth = 0
        in_string = False
        escaped = False
        for index in range(start, len(text)):
            char = text[index]
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
                continue
            if char == '"':
                in_string = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    candidate = text[start : index + 1]
                    try:
                        json.loads(candidate)
                    except ValueError:
                        break
                    return candidate
        start = text.find("{", start + 1)
    return None


def _optional_str(data: dict[str, Any], key: str) -> tuple[bool, str | None]:
    """(valid, value) for an optional string field: absent or null is (True, None)."""
    value = data.get(key)
    if value is None:
        return True, None
    if not isinstance(value, str):
        return False, None
    value = value.strip()
    return True, (value or None)


def parse_reply(text: str | None) -> ParsedReply | None:
    """Parse a model reply strictly; None when it is not a valid answer.

    Valid: the first JSON object in the text has a boolean ``error``; ``corrected_span`` and
    ``corrected_sentence`` are strings or null (or absent); when ``error`` is true, ``corrected_span``
    is a non-empty string. Strings are stripped; an empty ``corrected_sentence`` counts as absent.
    """
    if not isinstance(text, str):
        return None
    raw = extract_first_json_object(text)
    if raw is None:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if not isinstance(error, bool):
        return None
    ok_span, span = _optional_str(data, "corrected_span")
    ok_sentence, sentence = _optional_str(data, "corrected_sentence")
    if not (ok_span and ok_sentence):
        return None
    if not error:
        return ParsedReply(error=False)
    if span is None:
        return None
    return ParsedReply(error=True, corrected_span=span, corrected_sentence=sentence)


def to_proposal(parsed: ParsedReply | None, request: CorrectionRequest, allow_veto: bool) -> Proposal:
    """Turn a parsed answer into a :class:`Proposal` for ``request``.

    No answer gives an empty proposal. ``error: false`` gives a veto when ``allow_veto`` (else an empty
    proposal, which keeps the finding without a correction). ``error: true`` gives the corrected span as
    the one candidate; the corrected sentence is the model's when it contains the corrected span, else
    the span substituted into the original sentence. A "correction" equal to the original span is no
    proposal.
    """
    if parsed is None:
        return Proposal()
    if not parsed.error:
        return Proposal(veto=allow_veto)
    span = parsed.corrected_span or ""
    finding = request.finding
    if not span or _one_line(span) == _one_line(finding.text):
        return Proposal()
    sentence_start, sentence_end = request.sentences[finding.sentence]
    if parsed.corrected_sentence and span in parsed.corrected_sentence:
        corrected_sentence = parsed.corrected_sentence
    else:
        sentence = request.note[sentence_start:sentence_end]
        local_start = max(0, finding.start - sentence_start)
        local_end = max(local_start, min(len(sentence), finding.end - sentence_start))
        corrected_sentence = substitute(sentence, local_start, local_end, span)
    return Proposal(candidates=[(span, LLM_CANDIDATE_SCORE)], corrected_sentence=corrected_sentence)


def is_well_formed(request: CorrectionRequest) -> bool:
    """True when the request's sentence index is valid, so a prompt can be built for it."""
    return 0 <= request.finding.sentence < len(request.sentences) and bool(request.note.strip())


def select_requests(
    requests: Sequence[CorrectionRequest], min_note_score: float, top_k_findings: int | None
) -> list[bool]:
    """The cascade: which requests go to the model (True) and which get an empty proposal (False).

    A request goes to the model when its ``note_score`` is at least ``min_note_score``, it is well
    formed, and its finding is among the ``top_k_findings`` highest-scored findings of its note
    (``None`` = all; ties keep input order). Findings of one note are grouped by the note text and its
    sentence spans.
    """
    chosen = [
        request.note_score >= min_note_score and is_well_formed(request) for request in requests
    ]
    if top_k_findings is None:
        return chosen
    groups: dict[tuple[str, tuple[tuple[int, int], ...]], list[int]] = {}
    for index, request in enumerate(requests):
        if chosen[index]:
            groups.setdefault((request.note, request.sentences), []).append(index)
    for indices in groups.values():
        ranked = sorted(indices, key=lambda i: (-float(requests[i].finding.score), i))
        for index in ranked[top_k_findings:]:
            chosen[index] = False
    return chosen
