"""Sex check: a condition, test or procedure that does not exist for the patient's documented sex.

The documented sex is read from the opening demographics ("A 34-year-old woman", "a 6-year-old boy",
"Mr."), or, when no such word is there, from the pronouns (he/his/him against she/her, one side at least
twice and the other never). A sex-specific mention fires when it is affirmed, not about another person
(any relative, partner or the baby named in its sentence), and, for obstetric terms, the patient is not a
child (a newborn's note describes the mother's pregnancy). Notes that mention transgender identity, gender-
affirming care or a difference of sex development are skipped.
"""
from __future__ import annotations

import re

from medcorr.checks.note import NoteView
from medcorr.checks.result import CheckResult
from medcorr.finding import ErrorType

__all__ = ["documented_sex", "sex_mismatches"]

_SEX_NOUN = re.compile(r"\b(woman|women|female|girl|lady|mrs|ms|man|men|male|boy|gentleman|mr)\b", re.IGNORECASE)
_FEMALE = {"woman", "women", "female", "girl", "lady", "mrs", "ms"}
_PRONOUN = re.compile(r"\b(she|her|hers|herself|he|him|his|himself)\b", re.IGNORECASE)
_NOT_PATIENT = re.compile(r"\b(partner|partners|husband|wife|spouse|boyfriend|girlfriend|mother|father|son|daughter)\b",
                          re.IGNORECASE)
_ERROR_TYPES = {"condition": ErrorType.DIAGNOSIS, "anatomy": ErrorType.DIAGNOSIS,
                "management": ErrorType.MANAGEMENT, "treatment": ErrorType.TREATMENT}


def documented_sex(view: NoteView) -> tuple[str, int, int] | None:
    """(sex, start, end) of the words that document the patient's sex, or None."""
    head_end = view.sentences[min(1, len(view.sentences) - 1)][1]
    for match in _SEX_NOUN.finditer(view.text, 0, min(head_end, 400)):
        before = view.text[max(0, match.start() - 12):match.start()].lower()
        if _NOT_PATIENT.search(before) or re.search(r"\b(his|her|their)\s+$", before):
            continue
        word = match.group(1).lower()
        return ("female" if word in _FEMALE else "male"), match.start(), match.end()
    female, male, first = 0, 0, {}
    for match in _PRONOUN.finditer(view.text):
        word = match.group(1).lower()
        sex = "female" if word in ("she", "her", "hers", "herself") else "male"
        first.setdefault(sex, (match.start(), match.end()))
        female, male = female + (sex == "female"), male + (sex == "male")
    if female >= 2 and male == 0:
        return ("female", *first["female"])
    if male >= 2 and female == 0:
        return ("male", *first["male"])
    return None


def sex_mismatches(view: NoteView) -> list[CheckResult]:
    """Conditions, tests and procedures specific to the other sex than the documented one."""
    candidates = view.of("sex")
    if not candidates:
        return []
    sex = documented_sex(view)
    if sex is None or view.knowledge.patterns["transgender"].search(view.lowered):
        return []
    patient_sex, s_start, s_end = sex
    results: list[CheckResult] = []
    used_sentences: set[int] = set()
    for mention in sorted(candidates, key=lambda m: (m.start, -(m.end - m.start))):
        other_sex, kind, obstetric, term = mention.value
        if other_sex == patient_sex:
            continue
        sentence = view.sentence_of(mention.start)
        if sentence in used_sentences:
            continue
        if obstetric and view.is_child:
            continue
        scope = view.scope(mention)
        if scope.family or scope.hypothetical:  # "no testicular pain" in a woman's note is still a conflict
            continue
        used_sentences.add(sentence)
        written = view.text[mention.start:mention.end]
        what = {"condition": "a condition", "anatomy": "an organ", "management": "a test",
                "treatment": "a procedure"}[kind]
        results.append(CheckResult(
            kind="sex_mismatch", error_type=_ERROR_TYPES[kind], start=mention.start, end=mention.end,
            sentence=sentence, evidence_spans=[(mention.start, mention.end), (s_start, s_end)],
            reason=(f"{written} is {what} of {other_sex} patients; the note documents a {patient_sex} patient "
                    f"(sentence {view.sentence_of(s_start)})")))
    return results

