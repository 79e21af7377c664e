"""The verifier's question: one focused prompt per note, and strict parsing of its JSON answer.

The prompt shows the note as numbered sentences, names the sentences that hold the claims to check (with
their error types and spans), gives one instruction per error type involved, and shows retrieved solved
examples (notes with their correct answers). The answer must be one JSON object::

    {"error": true, "sentence": 4, "corrected_sentence": "...", "rationale": "..."}
    {"error": false, "sentence": -1, "corrected_sentence": "", "rationale": "..."}

:func:`parse_answer` accepts exactly that, with ``sentence`` among the claims' sentences when ``error`` is
true and a corrected sentence that differs from the original; anything else is rejected.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

from medcorr.finding import ErrorType
from medcorr.verifiers.base import VerificationRequest

PROMPT_VERSION = 1

SYSTEM = (
    "You are a careful physician reviewing a clinical note for one documentation error. A note holds at most "
    "one error: a wrong diagnosis, management step, treatment, drug (pharmacotherapy) or causal organism, "
    "stated in one sentence. Most statements in a note are correct; say there is an error only when the "
    "note's own findings contradict the statement. Answer with one JSON object and nothing else."
)

TYPE_INSTRUCTIONS: dict[ErrorType, str] = {
    ErrorType.DIAGNOSIS: "Diagnosis: does the stated diagnosis fit the history, examination and results?",
    ErrorType.MANAGEMENT: "Management: is the stated next step (test, procedure, referral) the right one now?",
    ErrorType.TREATMENT: "Treatment: is the stated treatment (procedure or therapy) indicated for this patient?",
    ErrorType.PHARMACOTHERAPY: "Drug: is the stated drug right for this condition and patient (allergies, "
                               "pregnancy, kidney function, interactions)?",
    ErrorType.CAUSAL_ORGANISM: "Organism: does the stated organism fit the clinical picture and the lab findings?",
}

ANSWER_FORMAT = (
    'Reply with JSON only: {"error": true or false, "sentence": the number of the wrong sentence (one of the '
    'sentences to check) or -1, "corrected_sentence": the whole sentence rewritten correctly, or "" when there '
    'is no error, "rationale": one short sentence}.'
)

def answer_schema(request: VerificationRequest) -> dict[str, Any]:
    """JSON schema of the answer to ``request``, for servers that constrain decoding (``response_format``):
    ``sentence`` is -1 or one of the sentences asked about."""
    return {
        "type": "object",
        "properties": {
            "error": {"type": "boolean"},
            "sentence": {"type": "integer", "enum": [-1, *request.claim_sentences]},
            "corrected_sentence": {"type": "string"},
            "rationale": {"type": "string"},
        },
        "required": ["error", "sentence", "corrected_sentence", "rationale"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Answer:
    """A validated answer."""

    error: bool
    sentence: int
    corrected_sentence: str
    rationale: str


def numbered(sentences: Sequence[str]) -> str:
    """``"0 first sentence\\n1 second ..."``."""
    return "\n".join(f"{index} {' '.join(text.split())}" for index, text in enumerate(sentences))


def format_example(example: Any) -> str:
    """A solved example (see :class:`medcorr.verifiers.bank.SolvedExample`) as a note and its answer."""
    if example.has_error:
        answer = {"error": True, "sentence": example.error_sentence,
                  "corrected_sentence": example.corrected_sentence or "", "rationale": f"{example.error_type.value.lower()} error"}
    else:
        answer = {"error": False, "sentence": -1, "corrected_sentence": "", "rationale": "no error"}
    return f"Note:\n{numbered(example.sentences)}\nAnswer: {json.dumps(answer, ensure_ascii=False)}"


def build_messages(request: VerificationRequest, examples: Sequence[Any] = ()) -> list[dict[str, str]]:
    """The chat messages for one request."""
    sentences = [request.sentence_text(i) for i in range(len(request.sentences))]
    claims = "\n".join(
        f"- sentence {claim.sentence}: {claim.type.value.lower().replace('_', ' ')} "
        f"\"{' '.join(claim.text.split())}\"" for claim in sorted(request.claims, key=lambda c: c.sentence))
    types = sorted({claim.type for claim in request.claims}, key=list(ErrorType).index)
    parts = []
    if examples:
        parts.append("Solved examples from other notes:\n\n" + "\n\n".join(format_example(e) for e in examples))
    parts += [
        f"Note to review:\n{numbered(sentences)}",
        f"Sentences to check (any error is in one of them):\n{claims}",
        "\n".join(TYPE_INSTRUCTIONS[t] for t in types),
        ANSWER_FORMAT,
    ]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def reminder_messages(messages: Sequence[dict[str, str]], bad_reply: str, problem: str) -> list[dict[str, str]]:
    """The conversation extended with the rejected reply and a reminder of the format."""
    return [*messages, {"role": "assistant", "content": bad_reply[:2000]},
            {"role": "user", "content": f"That answer was rejected ({problem}). {ANSWER_FORMAT}"}]


def prompt_key(model: str, messages: Sequence[dict[str, str]], settings: dict[str, Any]) -> str:
    """Cache key: sha256 over the model, the messages and the sampling settings."""
    payload = json.dumps({"v": PROMPT_VERSION, "model": model, "messages": list(messages), "settings": settings},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def first_json_object(text: str) -> str | None:
    """The first balanced ``{...}`` in ``text`` (code fences and chatter around it are ignored)."""
    start = text.find("{")
    while start >= 0:
        depth, in_string, escaped = 0, False, False
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
                    return text[start:index + 1]
        start = text.find("{", start + 1)
    return None


def parse_answer(reply: str, request: VerificationRequest) -> Answer | str:
    """The validated answer, or a one-line reason why the reply is rejected."""
    candidate = first_json_object(reply or "")
    if candidate is None:
        return "no JSON object"
    try:
        data = json.loads(candidate)
    except ValueError:
        return "invalid JSON"
    if not isinstance(data, dict) or not isinstance(data.get("error"), bool):
        return '"error" must be true or false'
    rationale = data.get("rationale", "")
    rationale = " ".join(rationale.split())[:300] if isinstance(rationale, str) else ""
    if not data["error"]:
        return Answer(False, -1, "", rationale)
    sentence = data.get("sentence")
    if isinstance(sentence, str) and sentence.strip().lstrip("-").isdigit():
        sentence = int(sentence)
    if not isinstance(sentence, int) or isinstance(sentence, bool):
        return '"sentence" must be a sentence number'
    if sentence not in request.claim_sentences:
        return f"sentence {sentence} is not one of the sentences to check {list(request.claim_sentences)}"
    corrected = data.get("corrected_sentence")
    if not isinstance(corrected, str) or not corrected.strip():
        return '"corrected_sentence" is missing'
    corrected = " ".join(corrected.split())
    if corrected == request.sentence_text(sentence):
        return "the corrected sentence is the original sentence"
    return Answer(True, sentence, corrected, rationale)
