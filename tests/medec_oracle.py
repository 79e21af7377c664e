"""Does the pipeline lose a verifier's knowledge? A scripted verifier that knows MEDEC's answers.

:class:`OracleScript` is a chat-server script that reads the note and the sentences to check out of a
verifier prompt, finds the MEDEC record it came from, and answers like a verifier that is right on a set
fraction of notes (chosen by a hash of the text id, so the same notes every run):

- right: "error in sentence s" with MEDEC's corrected sentence when the error sentence is among the
  sentences to check, else "no error" (it may only name a sentence it was asked about);
- wrong: the opposite: "no error" where it would name the error, "error in the first sentence asked
  about" otherwise.

With the component's top-k claims shown to it, a perfect oracle's MEDEC flag and sentence accuracy must
equal what top-k localisation allows (:func:`localisation_bound`); a partly right one must give exactly
the accuracy :func:`expected_accuracy` computes note by note. That pins sentence-id mapping, batching,
caching and voting end to end.

Run as a script for the table: ``python tests/medec_oracle.py --medec ../shared/medec/MEDEC-MS-...csv``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_stub import StubServer, answer, checked_sentences, note_sentences  # noqa: E402
from medcorr.medec.io import MedecRecord, Submission, read_medec  # noqa: E402
from medcorr.medec.run import RunStats, run_medec  # noqa: E402


def squeeze(text: str) -> str:
    """``text`` without any whitespace (Doc sentences and MEDEC sentences differ only in spacing)."""
    return "".join(text.split())


@dataclass(frozen=True)
class Truth:
    """What the oracle knows of one note."""

    text_id: str
    has_error: bool
    error_sentence: str
    corrected_sentence: str


def truths(records: Sequence[MedecRecord]) -> dict[str, Truth]:
    """Records by their squeezed text."""
    return {squeeze(r.text): Truth(r.text_id, r.error_flag == 1, r.error_sentence or "", r.corrected_sentence or "")
            for r in records}


def is_right(text_id: str, fraction: float, salt: str = "") -> bool:
    """Whether the oracle answers this note right (deterministic, about ``fraction`` of the notes)."""
    digest = hashlib.sha256(f"{salt}|{text_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32 < fraction


def error_index(sentences: Sequence[str], truth: Truth) -> int:
    """The index of the prompt sentence holding the MEDEC error sentence (-1 for a clean note)."""
    if not truth.has_error:
        return -1
    target = squeeze(truth.error_sentence)
    return next((i for i, text in enumerate(sentences) if target and target in squeeze(text)), -1)


class OracleScript:
    """The chat-server script; ``fraction`` of the notes are answered right (see the module docstring)."""

    def __init__(self, records: Sequence[MedecRecord], fraction: float = 1.0, salt: str = "") -> None:
        self.by_text = truths(records)
        self.fraction = fraction
        self.salt = salt

    def __call__(self, body: dict[str, Any], index: int) -> tuple[int, str]:
        sentences, checked = note_sentences(body), checked_sentences(body)
        truth = self.by_text[squeeze("".join(sentences))]
        wrong_in = error_index(sentences, truth)
        names_error = wrong_in in checked
        if not is_right(truth.text_id, self.fraction, self.salt):
            names_error = not names_error
            if names_error:
                wrong_in = checked[0]
        if not names_error:
            return 200, answer(False, rationale="oracle: no error among the sentences asked about")
        corrected = truth.corrected_sentence if wrong_in == error_index(sentences, truth) else \
            sentences[wrong_in].rstrip(".") + " (oracle's wrong guess)."
        return 200, answer(True, wrong_in, corrected, "oracle")


def verifier_config(server: StubServer, **options: Any) -> dict[str, Any]:
    """The component's verifier setting for a ChatVerifier on ``server`` (no retrieved examples)."""
    return {"@medcorr_verifiers": "medcorr.ChatVerifier.v1", "base_url": server.base_url, "model": "oracle",
            "api_key_env": None, "examples": 0, "backoff": 0.01, **options}


def build(verifier: dict[str, Any] | None, verify_top_k: int = 2):
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr", config={"verifier": verifier, "verify_top_k": verify_top_k})
    nlp.max_length = 10 ** 7
    return nlp


def submission(nlp, records: Sequence[MedecRecord], stats: RunStats | None = None) -> Submission:
    lines = run_medec(nlp, records, batch_size=32, stats=stats)
    return Submission(lines={line.text_id: line for line in lines})


def claim_sentences(nlp, records: Sequence[MedecRecord], k: int) -> dict[str, list[int]]:
    """Per text id, the MEDEC sentence ids of the top-k claims of the pipeline without a verifier."""
    from medcorr.medec.run import make_medec_doc, medec_sentence_id

    result = {}
    docs, boundaries = [], []
    for record in records:
        doc, bounds = make_medec_doc(nlp, record)
        docs.append(doc)
        boundaries.append(bounds)
    for record, doc, bounds in zip(records, nlp.pipe(docs, batch_size=32), boundaries):
        sentences = list(doc.sents) if bounds else []
        result[record.text_id] = [medec_sentence_id(bounds, sentences[c.sentence].start)
                                  for c in doc._.medcorr.claims[:k]]
    return result


def localisation_bound(records: Sequence[MedecRecord], claims: dict[str, list[int]]) -> float:
    """Flag (= sentence) accuracy of a perfect verifier shown the top-k claims: clean notes right, error
    notes right when their error sentence is among the claims."""
    right = sum(1 for r in records if r.error_flag != 1 or r.error_sentence_id in claims[r.text_id])
    return right / len(records)


def top_k_localisation(records: Sequence[MedecRecord], claims: dict[str, list[int]], k: int) -> float:
    """Share of error notes whose error sentence is among the top-k claims."""
    errors = [r for r in records if r.error_flag == 1]
    return sum(r.error_sentence_id in claims[r.text_id][:k] for r in errors) / len(errors)


def expected_accuracy(records: Sequence[MedecRecord], claims: dict[str, list[int]], fraction: float,
                      salt: str = "") -> tuple[float, float]:
    """(flag, sentence) accuracy of the oracle answering ``fraction`` of the notes right, note by note."""
    flag_hits = sentence_hits = 0
    for record in records:
        shown = claims[record.text_id]
        in_claims = record.error_flag == 1 and record.error_sentence_id in shown
        names_error = in_claims if is_right(record.text_id, fraction, salt) else not in_claims
        predicted_sentence = (record.error_sentence_id if in_claims else shown[0]) if names_error else -1
        gold_sentence = record.error_sentence_id if record.error_flag == 1 else -1
        flag_hits += int(names_error) == (record.error_flag == 1)
        sentence_hits += predicted_sentence == gold_sentence
    return flag_hits / len(records), sentence_hits / len(records)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--medec", required=True, help="a labelled MEDEC CSV")
    parser.add_argument("--top-k", type=int, default=2)
    args = parser.parse_args(argv)
    from medcorr.medec.score import score_submission

    records = read_medec(args.medec)
    plain = build(None)
    claims = claim_sentences(plain, records, 3)
    report: dict[str, Any] = {"notes": len(records), "top_k": args.top_k,
                              "localisation": {f"top{k}": top_k_localisation(records, claims, k) for k in (1, 2, 3)}}
    shown = {key: value[: args.top_k] for key, value in claims.items()}
    report["bound"] = localisation_bound(records, shown)
    rows = []
    for fraction in (1.0, 0.9, 0.7, 0.5):
        server = StubServer(OracleScript(records, fraction))
        try:
            stats = RunStats()
            started = time.perf_counter()
            result = score_submission(records, submission(build(verifier_config(server), args.top_k), records, stats))
            rows.append({"fraction_right": fraction, "expected": expected_accuracy(records, shown, fraction),
                         "flag_accuracy": result.flag_accuracy, "sentence_accuracy": result.sentence_accuracy,
                         "calls": server.calls, "seconds": round(time.perf_counter() - started, 1),
                         "statuses": stats.statuses})
        finally:
            server.close()
    report["oracles"] = rows
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
