"""Drug checks: allergy conflicts, pregnancy contraindications, therapeutic duplication.

A drug mention counts as *given* when its scope is affirmed (not negated, hypothetical or about another
person), the drug is not stopped / switched from, and the mention is not itself the allergen of an allergy
statement.
"""
from __future__ import annotations

import re

from medcorr.checks.knowledge import Mention
from medcorr.checks.note import NoteView
from medcorr.checks.result import CheckResult
from medcorr.finding import ErrorType

__all__ = ["allergy_conflicts", "pregnancy_contraindications", "duplicate_classes"]

#: words after an allergy cue that may still name allergens ("allergic to latex, sulfa and penicillin")
_ALLERGEN_WINDOW = 8
#: words before an allergy cue that may name the allergen ("penicillin allergy", "PCN-allergic")
_ALLERGEN_BEFORE = 3
_LIST_BREAKS = {"was", "is", "were", "started", "given", "treated", "prescribed", "received", "receiving",
                "takes", "taking", "on", "who", "which", "that", "but", "however", "presents", "presented",
                "because", "so", "now", "then", "with", "for"}
#: "hives after taking X": an exposure verb right after "after" still points at the allergen
_EXPOSURE = {"takes", "taking", "received", "receiving", "given", "started", "treated"}
_AFTER = {"after", "following", "when", "while", "upon", "on"}
_BECAME = re.compile(r"\b(found out|learned|discovered|became|become|got|confirmed)\b")


def _allergy_statements(view: NoteView) -> list[tuple[Mention, str, str, Mention]]:
    """(allergen mention, 'drug' | 'group', drug name or group, cue-anchor mention) for each allergen an
    affirmed allergy statement names."""
    k = view.knowledge
    cue_re = k.patterns["allergy_cue"]
    out = []
    groups_at = {(m.start, m.end) for m in view.mentions if m.label == "allergen"}
    candidates = [m for m in view.mentions if m.label == "allergen"
                  or (m.label == "drug" and (m.start, m.end) not in groups_at)]
    if not candidates:
        return out
    for sentence in {view.sentence_of(m.start) for m in candidates}:
        first, last = view.sentence_words(sentence)
        cue_words = view.find_phrases(cue_re, first, last)
        for mention in candidates:
            if view.sentence_of(mention.start) != sentence:
                continue
            anchor = _anchor_cue(view, mention, cue_words)
            if anchor is None:
                continue
            cue_start, cue_end = anchor
            cue_mention = Mention("cue", None, view.word_starts[cue_start], view.word_ends[cue_end], cue_start, cue_end)
            cue_scope = view.scope(cue_mention)
            own = view.scope(mention)
            if cue_scope.negated or cue_scope.hypothetical or cue_scope.family or own.negated or own.hypothetical:
                continue
            if mention.label == "drug":
                out.append((mention, "drug", mention.value, cue_mention))
            else:
                out.append((mention, "group", mention.value, cue_mention))
    return out


def _anchor_cue(view: NoteView, mention: Mention, cues: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The allergy cue that governs ``mention``: one shortly before it (allergic to X, allergies: X, Y) with
    no verb or clause word between, or one just after it (X allergy, X-allergic)."""
    for cue_start, cue_end in cues:
        if cue_end < mention.first_word <= cue_end + _ALLERGEN_WINDOW:
            between = view.words[cue_end + 1:mention.first_word]
            if not any(w in _LIST_BREAKS and not (w in _EXPOSURE and i and between[i - 1] in _AFTER)
                       for i, w in enumerate(between)):
                return cue_start, cue_end
        if mention.last_word < cue_start <= mention.last_word + _ALLERGEN_BEFORE:
            return cue_start, cue_end
    return None


def given_drugs(view: NoteView, exclude: set[tuple[int, int]] | None = None) -> list[Mention]:
    """Drug mentions stated as given to the patient (see the module docstring)."""
    exclude = exclude or set()
    out = []
    for mention in view.of("drug"):
        if (mention.start, mention.end) in exclude:
            continue
        scope = view.scope(mention)
        if scope.affirmed and not scope.stopped:
            out.append(mention)
    return out


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def allergy_conflicts(view: NoteView) -> list[CheckResult]:
    """A drug given although the note records an allergy to it, or to a class it belongs to."""
    k = view.knowledge
    statements = _allergy_statements(view)
    if not statements:
        return []
    allergen_spans = {(m.start, m.end) for m, *_ in statements}
    fire_levels = set(k.allergy.get("fire_levels", ["full"]))
    groups = k.allergy.get("groups", {})
    results: list[CheckResult] = []
    seen: set[str] = set()
    for drug in given_drugs(view, allergen_spans):
        name = drug.value
        if name in seen:
            continue
        my_groups = k.drug_groups.get(name, set())
        for allergen, how, value, _cue in statements:
            level, via = None, ""
            if how == "drug":
                if value == name:
                    level, via = "full", ""
                else:
                    for group in k.drug_groups.get(value, set()):
                        spec = groups[group]
                        if group in my_groups:
                            level, via = spec.get("within", "full"), group
                        elif name in k.group_partial.get(group, set()):
                            level, via = "partial", group
                        else:
                            for cross, cross_level in spec.get("cross", {}).items():
                                if cross in my_groups:
                                    level, via = cross_level, cross
                        if level in fire_levels:
                            break
            else:
                spec = groups.get(value, {})
                if value in my_groups:
                    level, via = "full", value
                elif name in k.group_partial.get(value, set()):
                    level, via = "partial", value
                else:
                    for cross, cross_level in spec.get("cross", {}).items():
                        if cross in my_groups:
                            level, via = cross_level, value
                            if cross_level in fire_levels:
                                break
            if level not in fire_levels:
                continue
            allergen_sentence = view.sentence_of(allergen.start)
            written = view.text[drug.start:drug.end]
            if via and how == "group":
                label = groups[value].get("label", value)
                reason = f"{written} is {_article(label)} {label}; the note records {_article(label)} {label} allergy " \
                         f"(sentence {allergen_sentence})"
            elif via:
                label = groups[via].get("label", via)
                reason = (f"{written} and {view.text[allergen.start:allergen.end]} are both {label}s; the note "
                          f"records an allergy to {view.text[allergen.start:allergen.end]} (sentence {allergen_sentence})")
            else:
                reason = f"the note records an allergy to {written} (sentence {allergen_sentence})"
            results.append(CheckResult(
                kind="allergy_conflict", error_type=ErrorType.PHARMACOTHERAPY, start=drug.start, end=drug.end,
                sentence=view.sentence_of(drug.start), evidence_spans=[(drug.start, drug.end),
                                                                       (allergen.start, allergen.end)],
                reason=reason))
            seen.add(name)
            break
    return results


def _pregnancy_statement(view: NoteView) -> Mention | None:
    """The first affirmed, current pregnancy statement about the patient, or None."""
    k = view.knowledge
    if view.is_child or k.patterns["not_pregnant"].search(view.lowered):
        return None
    for mention in view.of("pregnancy"):
        scope = view.scope(mention)
        if not scope.affirmed:
            continue
        if scope.historical and not _BECAME.search(view.joined(mention.first_word - 5, mention.first_word)):
            continue  # "her previous pregnancy"; but "found out she was pregnant 7 weeks ago" is current
        after = view.joined(mention.last_word + 1, mention.last_word + 4)
        before = view.joined(mention.first_word - 3, mention.first_word)
        if after.startswith(("test", "tests", "testing", "screen")):
            if "positive" not in after and "positive" not in before and "positive" not in view.joined(
                    mention.last_word + 1, mention.last_word + 7):
                continue
        return mention
    return None


def pregnancy_contraindications(view: NoteView) -> list[CheckResult]:
    """A drug contraindicated in pregnancy given to a patient the note states is pregnant."""
    k = view.knowledge
    drugs = [m for m in view.of("drug") if m.value in k.pregnancy_drugs]
    if not drugs:
        return []
    statement = _pregnancy_statement(view)
    if statement is None:
        return []
    exempt = k.pregnancy.get("exempt_when_note_mentions", {})
    results, seen = [], set()
    for drug in given_drugs(view):
        name = drug.value
        if name not in k.pregnancy_drugs or name in seen:
            continue
        if any(cue in view.lowered for cue in exempt.get(name, ())):
            continue
        seen.add(name)
        written = view.text[drug.start:drug.end]
        results.append(CheckResult(
            kind="pregnancy_contraindication", error_type=ErrorType.PHARMACOTHERAPY, start=drug.start, end=drug.end,
            sentence=view.sentence_of(drug.start),
            evidence_spans=[(drug.start, drug.end), (statement.start, statement.end)],
            reason=(f"{written} is contraindicated in pregnancy ({k.pregnancy_drugs[name]}); the note states the "
                    f"patient is pregnant (sentence {view.sentence_of(statement.start)})")))
    return results


def duplicate_classes(view: NoteView) -> list[CheckResult]:
    """Two different drugs of one class started together (in one sentence, with no 'or' / 'switched' /
    'instead' between them)."""
    k = view.knowledge
    drugs = [m for m in view.of("drug") if m.value in k.duplicate_classes]
    if len(drugs) < 2:
        return []
    given = {(m.start, m.end) for m in given_drugs(view)}
    by_sentence: dict[int, list[Mention]] = {}
    for m in drugs:
        if (m.start, m.end) in given:
            by_sentence.setdefault(view.sentence_of(m.start), []).append(m)
    results = []
    for sentence, mentions in sorted(by_sentence.items()):
        first, last = view.sentence_words(sentence)
        if not k.patterns["duplication_cue"].search(view.joined(first, last)):
            continue
        done = False
        for i, a in enumerate(mentions):
            for b in mentions[i + 1:]:
                if a.value == b.value or a.value in b.value or b.value in a.value:
                    continue
                shared = k.duplicate_classes[a.value] & k.duplicate_classes[b.value]
                if not shared:
                    continue
                between = view.joined(a.last_word + 1, b.first_word)
                if k.patterns["not_together"].search(between) or b.first_word - a.last_word > 12:
                    continue
                cls = sorted(shared)[0].replace("_", " ")
                wa, wb = view.text[a.start:a.end], view.text[b.start:b.end]
                results.append(CheckResult(
                    kind="duplicate_class", error_type=ErrorType.PHARMACOTHERAPY, start=b.start, end=b.end,
                    sentence=sentence, evidence_spans=[(b.start, b.end), (a.start, a.end)],
                    reason=f"{wa} and {wb} are both {cls} drugs, started together (therapeutic duplication)"))
                done = True
                break
            if done:
                break
    return results
