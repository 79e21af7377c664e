"""Measure medcorr's evidence checks on conflicts injected into the shared MEDEC notes, and on the notes as written.

For every check kind this builds, with a fixed seed, a set of notes with one injected documentation conflict
(an allergy sentence that conflicts with a drug of the note, a pregnancy stated where a contraindicated drug
is given, the patient's sex flipped where a sex-specific condition is stated, a finding contradicted, one
laterality flipped, two drugs of one class started together). A kind *recalls* an injected note when it
fires on it with an evidence span that overlaps the injected text; its *false alarms* are its firings on the
same notes' uninjected twins (the notes as written). Then it runs every kind on all notes as written and
lists each firing (note id, kind, the cited spans' words, the reason) for a reviewer to judge.

The templates below were written before the checks were tuned and are deliberately varied (phrasings,
positions, abbreviations, lists); they are not adjusted to what the checks catch. Drugs and sex-specific
words are found with the shipped lexicon and small word lists of this file, not with the checks' tables.

    python tests/inject_conflicts.py --medec ../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv \
        --json checks-measure.json [--context] [--speed]

Every kind is measured (on by default or not); ``--speed`` times the kinds on by default.

No note text is printed; the listing of firings shows only the cited spans (drug, condition, side words).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 19
DEFAULT_MEDEC = ROOT.parent / "shared" / "medec" / "MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv"
KINDS = ("allergy_conflict", "pregnancy_contraindication", "sex_mismatch", "laterality_conflict",
         "presence_conflict", "duplicate_class")


@dataclass
class Injected:
    """One injected note: its twin's id, the kind, the new text and the injected character ranges."""

    text_id: str
    kind: str
    variant: str
    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- helpers
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")


def _sentences(text: str) -> list[tuple[int, int]]:
    """Rough sentence spans for choosing insertion points (independent of medcorr's splitter)."""
    spans, start = [], 0
    for match in re.finditer(r"(?<=[.!?])\s+(?=[A-Z0-9])", text):
        spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text.rstrip())))
    return [s for s in spans if s[1] > s[0]]


def _insert_sentence(text: str, sentence: str, rng: random.Random, near: int | None = None) -> tuple[str, tuple[int, int]]:
    """Insert ``sentence`` at a sentence boundary: at the start, after the first sentence, at the end, or next
    to character ``near`` (before or after its sentence). Returns the new text and the inserted range."""
    spans = _sentences(text)
    choices = ["start", "after_first", "end"]
    if near is not None:
        choices += ["before_near", "after_near", "after_near"]
    where = rng.choice(choices)
    if where == "start" or not spans:
        pos = 0
    elif where == "after_first":
        pos = spans[0][1]
    elif where == "end":
        pos = spans[-1][1]
    else:
        holder = next((s for s in spans if s[0] <= (near or 0) <= s[1]), spans[-1])
        pos = holder[0] if where == "before_near" else holder[1]
    if pos == 0:
        new = sentence + " " + text
        return new, (0, len(sentence))
    if where == "before_near":  # pos is a sentence start: the old sentence follows the new one
        new = text[:pos] + sentence + " " + text[pos:]
        return new, (pos, pos + len(sentence))
    new = text[:pos] + " " + sentence + text[pos:]
    return new, (pos + 1, pos + 1 + len(sentence))


def _note_sex(text: str) -> str | None:
    head = text[:300]
    match = re.search(r"\b(woman|female|girl|lady|man|male|boy|gentleman)\b", head, re.IGNORECASE)
    if match:
        return "female" if match.group(1).lower() in {"woman", "female", "girl", "lady"} else "male"
    she = len(re.findall(r"\b(she|her)\b", text, re.IGNORECASE))
    he = len(re.findall(r"\b(he|his|him)\b", text, re.IGNORECASE))
    if she > 2 * he and she >= 2:
        return "female"
    if he > 2 * she and he >= 2:
        return "male"
    return None


def _age_years(text: str) -> float | None:
    match = re.search(r"\b(\d+)[- ](year|month|week|day)s?[- ]old\b", text[:300], re.IGNORECASE)
    if not match:
        return None
    value = float(match.group(1))
    return {"year": value, "month": value / 12, "week": value / 52, "day": value / 365}[match.group(2).lower()]


def _pronouns(sex: str) -> dict[str, str]:
    return {"subj": "she" if sex == "female" else "he", "poss": "her" if sex == "female" else "his"}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


_RELATIVE = re.compile(r"\b(mother|father|sister|brother|aunt|uncle|grandmother|grandfather|cousin|family|"
                       r"wife|husband|partner|son|daughter|sibling|parent)s?\b", re.IGNORECASE)
_NEGATION = re.compile(r"\b(no|not|denies|denied|without|negative|never|absence)\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------------- drugs
class DrugFinder:
    """Drug mentions by the shipped lexicon's drug terms (single words and two-word names)."""

    def __init__(self) -> None:
        from medcorr.lexicon import Lexicon, lookup_key

        self.lookup_key = lookup_key
        self.by_key: dict[str, Any] = {}
        lexicon = Lexicon.load()
        for entry in lexicon.iter_entries("drug"):
            for term in (entry.name, *entry.terms):
                key = lookup_key(term)
                if len(key) >= 5 and key not in self.by_key:
                    self.by_key[key] = entry

    def mentions(self, text: str) -> list[tuple[int, int, Any]]:
        words = list(_WORD.finditer(text))
        found, i = [], 0
        while i < len(words):
            hit = None
            for n in (3, 2, 1):
                if i + n > len(words):
                    continue
                start, end = words[i].start(), words[i + n - 1].end()
                entry = self.by_key.get(self.lookup_key(text[start:end]))
                if entry is not None:
                    hit = (start, end, entry, n)
                    break
            if hit:
                found.append(hit[:3])
                i += hit[3]
            else:
                i += 1
        return found


# Class word phrasings for allergy statements, and sibling members (injection side; written for this test).
ALLERGY_CLASS_WORDS = {
    "penicillin": ["penicillin", "PCN", "penicillins", "Penicillin"],
    "cephalosporin": ["cephalosporins"],
    "fluoroquinolone": ["fluoroquinolones", "quinolones"],
    "macrolide": ["macrolides"],
    "tetracycline": ["tetracyclines"],
    "sulfonamide_antibiotic": ["sulfa", "sulfa drugs", "sulfonamides"],
    "nsaid": ["NSAIDs", "nonsteroidal anti-inflammatory drugs"],
    "ace_inhibitor": ["ACE inhibitors"],
    "carbapenem": ["carbapenems"],
    "aminoglycoside": ["aminoglycosides"],
}
ALLERGY_SIBLINGS = {
    "penicillin": ["amoxicillin", "ampicillin", "dicloxacillin", "nafcillin", "penicillin V"],
    "fluoroquinolone": ["ciprofloxacin", "levofloxacin", "moxifloxacin"],
    "macrolide": ["erythromycin", "azithromycin", "clarithromycin"],
    "tetracycline": ["tetracycline", "doxycycline", "minocycline"],
    "nsaid": ["ibuprofen", "naproxen", "aspirin"],
    "ace_inhibitor": ["lisinopril", "enalapril", "captopril"],
    "aminoglycoside": ["gentamicin", "tobramycin"],
}
ALLERGY_TEMPLATES = [
    "Allergies: {a}.",
    "ALLERGIES: {a} (rash).",
    "{Subj} is allergic to {a}.",
    "Allergic to {a}.",
    "{Subj} has a documented allergy to {a}.",
    "Known {a} allergy.",
    "History of anaphylaxis to {a}.",
    "Drug allergies: {a} (hives).",
    "{Subj} reports an allergy to {a}, which caused hives.",
    "{A} allergy (urticaria).",
    "{Poss} medical record lists an allergy to {a}.",
    "{Subj} developed angioedema after taking {a} in the past.",
    "Past medical history is notable for an allergy to {a}.",
    "Allergy: {a} - anaphylaxis.",
    "{Subj} states {subj} is allergic to latex and {a}.",
    "Allergies include shellfish and {a}.",
    "{Subj} had an anaphylactic reaction to {a} as a child.",
    "Medication allergies: {a}.",
    "NKFA; drug allergy to {a}.",
    "{Subj} is severely allergic to {a} (throat swelling).",
]


def inject_allergy(record_text: str, rng: random.Random, finder: DrugFinder) -> tuple[str, list, str] | None:
    drugs = finder.mentions(record_text)
    if not drugs:
        return None
    start, end, entry = rng.choice(drugs)
    written = record_text[start:end]
    classes = [g for g in entry.group_values("cls") if g in ALLERGY_CLASS_WORDS]
    options = [("same_drug", written.lower() if rng.random() < 0.6 else written)]
    if classes:
        options.append(("class_word", rng.choice(ALLERGY_CLASS_WORDS[classes[0]])))
        siblings = [s for s in ALLERGY_SIBLINGS.get(classes[0], []) if s.lower() != written.lower()]
        if siblings:
            options.append(("sibling", rng.choice(siblings)))
    variant, allergen = rng.choice(options)
    sex = _note_sex(record_text) or rng.choice(["female", "male"])
    p = _pronouns(sex)
    template = rng.choice(ALLERGY_TEMPLATES)
    sentence = template.format(a=allergen, A=_cap(allergen), subj=p["subj"], Subj=_cap(p["subj"]),
                               Poss=_cap(p["poss"]))
    text, span = _insert_sentence(record_text, sentence, rng, near=start)
    shift = len(sentence) + 1 if span[0] <= start else 0
    return text, [span, (start + shift, end + shift)], variant


# ------------------------------------------------------------------------------------------ pregnancy
PREGNANCY_DRUGS = ["warfarin", "isotretinoin", "methotrexate", "lisinopril", "enalapril", "losartan",
                   "valsartan", "atorvastatin", "simvastatin", "valproic acid", "doxycycline", "tetracycline",
                   "leflunomide", "mycophenolate mofetil", "thalidomide", "ribavirin", "finasteride",
                   "acitretin", "captopril", "rosuvastatin"]
PREGNANCY_TEMPLATES = [
    "{Subj} is {n} weeks pregnant.",
    "{Subj} is currently pregnant at {n} weeks' gestation.",
    "Pregnancy: {n} weeks by LMP.",
    "{Subj} is G2P1 at {n} weeks of gestation.",
    "{Poss} pregnancy test is positive, and ultrasound confirms an intrauterine pregnancy at {n} weeks.",
    "{Subj} is in {poss} second trimester of pregnancy.",
    "Of note, {subj} is pregnant.",
    "{Subj} is gravid, estimated gestational age {n} weeks.",
    "Urine beta-hCG is positive; {subj} is {n} weeks pregnant by dates.",
    "{Subj} found out {subj} was pregnant {k} weeks ago.",
    "Currently pregnant (G1P0, {n} weeks).",
    "{Subj} is at {n} weeks of gestation with {poss} first child.",
    "This is {poss} third pregnancy; {subj} is currently at {n} weeks.",
    "{Subj} is in the third trimester.",
    "{Subj} reports that {subj} is pregnant and due in {k} months.",
]
_DEMOGRAPHIC = re.compile(r"\b(\d+)[- ]year[- ]old (woman|female|girl)\b", re.IGNORECASE)


def inject_pregnancy(record_text: str, rng: random.Random, finder: DrugFinder) -> tuple[str, list, str] | None:
    if _note_sex(record_text) != "female":
        return None
    age = _age_years(record_text)
    if age is None or not 14 <= age <= 47:
        return None
    drugs = finder.mentions(record_text)
    contraindicated = [d for d in drugs if d[2].name.lower() in PREGNANCY_DRUGS
                       or record_text[d[0]:d[1]].lower() in PREGNANCY_DRUGS]
    text, spans = record_text, []
    if contraindicated:
        start, end, _ = rng.choice(contraindicated)
        variant = "pregnancy_added"
    elif drugs:
        start, end, _ = rng.choice(drugs)
        replacement = rng.choice(PREGNANCY_DRUGS)
        text = text[:start] + replacement + text[end:]
        end = start + len(replacement)
        variant = "drug_replaced"
        if re.search(r"pregnan|gestation", text, re.IGNORECASE) and rng.random() < 0.5:
            return text, [(start, end)], variant + "_note_pregnant"
    else:
        return None
    n, k = rng.randint(6, 36), rng.randint(2, 7)
    p = _pronouns("female")
    demographic = _DEMOGRAPHIC.search(text)
    if demographic and rng.random() < 0.3:
        phrase = rng.choice([f"pregnant {demographic.group(2)}", f"{demographic.group(2)} at {n} weeks' gestation",
                             f"{demographic.group(2)}, G2P1 at {n} weeks' gestation,"])
        new_start = demographic.start(2)
        text = text[:new_start] + phrase + text[demographic.end(2):]
        delta = len(phrase) - (demographic.end(2) - new_start)
        if start > new_start:
            start, end = start + delta, end + delta
        return text, [(new_start, new_start + len(phrase)), (start, end)], variant + "_demographic"
    sentence = rng.choice(PREGNANCY_TEMPLATES).format(n=n, k=k, subj=p["subj"], Subj=_cap(p["subj"]),
                                                      poss=p["poss"], Poss=_cap(p["poss"]))
    text, span = _insert_sentence(text, sentence, rng, near=start)
    shift = len(sentence) + 1 if span[0] <= start else 0
    return text, [span, (start + shift, end + shift)], variant


# ------------------------------------------------------------------------------------------------ sex
SEX_WORDS = {
    "female": re.compile(r"\b(ovar\w*|uter\w*|endometri\w*|vagin\w*|cervical (?:cancer|dysplasia|motion)|cervix|"
                         r"pregnan\w*|gestation\w*|menstru\w*|menses|hysterectomy|cesarean|ectopic|placent\w*|"
                         r"salping\w*|adnex\w*|pre-?eclampsia|fallopian|vulv\w*|menopaus\w*|"
                         r"polycystic ovar\w*|gravid\w*|postpartum)\b", re.IGNORECASE),
    "male": re.compile(r"\b(prostat\w*|testic\w*|testis|testes|scrot\w*|penis|penile|erectile|orchi\w*|"
                       r"epididym\w*|vasectomy|seminoma|hydrocele|varicocele|cryptorchidism|phimosis|priapism)\b",
                       re.IGNORECASE),
}
_SEX_NOUNS = {
    "female": {"woman": "man", "female": "male", "girl": "boy", "lady": "gentleman", "Mrs.": "Mr.", "Ms.": "Mr."},
    "male": {"man": "woman", "male": "female", "boy": "girl", "gentleman": "lady", "Mr.": "Ms."},
}


def _flip_pronouns(text: str, to: str) -> str:
    if to == "male":
        table = [(r"\bherself\b", "himself"), (r"\bshe\b", "he"), (r"\bShe\b", "He"),
                 (r"\bher(?=\s*[.,;:)]|\s+(?:to|for|with|from|and|on|in|at|by|that|a|an|the)\b)", "him"),
                 (r"\bher\b", "his"), (r"\bHer\b", "His"), (r"\bhers\b", "his")]
    else:
        table = [(r"\bhimself\b", "herself"), (r"\bhe\b", "she"), (r"\bHe\b", "She"), (r"\bhis\b", "her"),
                 (r"\bHis\b", "Her"), (r"\bhim\b", "her")]
    for pattern, repl in table:
        text = re.sub(pattern, repl, text)
    return text


def inject_sex(record_text: str, rng: random.Random, finder: DrugFinder) -> tuple[str, list, str] | None:
    sex = _note_sex(record_text)
    age = _age_years(record_text)
    if sex is None or age is None or age < 12:
        return None
    about_patient = []
    for s_start, s_end in _sentences(record_text):
        sentence = record_text[s_start:s_end]
        if _RELATIVE.search(sentence):
            continue
        for match in SEX_WORDS[sex].finditer(sentence):
            about_patient.append((s_start + match.start(), s_start + match.end()))
    if not about_patient:
        return None
    target = "male" if sex == "female" else "female"
    nouns = _SEX_NOUNS[sex]
    noun = re.search(r"\b(" + "|".join(re.escape(n) for n in nouns) + r")(?=\W)", record_text[:300])
    if not noun:
        return None
    variant = rng.choice(["noun_only", "noun_and_pronouns", "noun_and_pronouns"])
    replacement = nouns[noun.group(1)]
    text = record_text[:noun.start()] + replacement + record_text[noun.end():]
    delta = len(replacement) - len(noun.group(1))
    spans = [(noun.start(), noun.start() + len(replacement))]
    spans += [(s + delta, e + delta) if s > noun.start() else (s, e) for s, e in about_patient]
    if variant == "noun_and_pronouns":
        before = text
        text = _flip_pronouns(text, target)
        if len(text) != len(before):  # pronoun lengths differ: find the sex-specific words again
            spans = [(m.start(), m.end()) for m in re.finditer(
                re.escape(replacement), text[:300])][:1]
            for s_start, s_end in _sentences(text):
                sentence = text[s_start:s_end]
                if not _RELATIVE.search(sentence):
                    spans += [(s_start + m.start(), s_start + m.end()) for m in SEX_WORDS[sex].finditer(sentence)]
    return text, spans, variant


# ------------------------------------------------------------------------------------------- presence
FINDINGS = ["fever", "cough", "chest pain", "headache", "nausea", "vomiting", "diarrhea", "abdominal pain",
            "shortness of breath", "rash", "dysuria", "weight loss", "fatigue", "chills", "night sweats",
            "palpitations", "dizziness", "back pain", "hematuria", "jaundice", "wheezing", "constipation",
            "sore throat", "joint pain", "syncope", "dyspnea", "edema", "pruritus", "weakness", "lymphadenopathy",
            "confusion", "seizure", "blurred vision", "numbness"]
DENIAL_TEMPLATES = [
    "{Subj} denies {f}.",
    "No {f}.",
    "ROS: negative for {f}.",
    "{Subj} reports no {f}.",
    "Review of systems is negative for {f}.",
    "There is no {f}.",
    "{F}: denied.",
    "{Subj} has not had any {f}.",
    "Pt denies any {f} at this time.",
    "{Subj} specifically denies {f}.",
    "Negative for {f}.",
    "{Subj} has had no {f}.",
    "{F} is absent.",
    "Without {f}.",
    "{Subj} has no complaints of {f}.",
]
AFFIRM_TEMPLATES = [
    "{Subj} reports {f} for the past 3 days.",
    "{Subj} also complains of {f}.",
    "{F} is present.",
    "Positive for {f}.",
    "{Subj} endorses {f}.",
    "Notable for {f} since yesterday.",
    "{Subj} has had {f} for a week.",
    "The patient describes {f}.",
]


def inject_presence(record_text: str, rng: random.Random, finder: DrugFinder) -> tuple[str, list, str] | None:
    sex = _note_sex(record_text) or "female"
    p = _pronouns(sex)
    affirmed, denied = [], []
    for s_start, s_end in _sentences(record_text):
        sentence = record_text[s_start:s_end]
        for finding in FINDINGS:
            for match in re.finditer(r"\b" + re.escape(finding) + r"s?\b", sentence, re.IGNORECASE):
                item = (finding, s_start + match.start(), s_start + match.end())
                if _NEGATION.search(sentence[:match.start()]):
                    denied.append(item)
                elif not _RELATIVE.search(sentence):
                    affirmed.append(item)
    affirmed_names = {a[0] for a in affirmed}
    denied = [d for d in denied if d[0] not in affirmed_names]
    options = []
    if affirmed:
        options.append("deny_affirmed")
    if denied:
        options.append("affirm_denied")
    if not options:
        return None
    variant = rng.choice(options)
    finding, start, end = rng.choice(affirmed if variant == "deny_affirmed" else denied)
    templates = DENIAL_TEMPLATES if variant == "deny_affirmed" else AFFIRM_TEMPLATES
    sentence = rng.choice(templates).format(f=finding, F=_cap(finding), Subj=_cap(p["subj"]))
    text, span = _insert_sentence(record_text, sentence, rng, near=start)
    shift = len(sentence) + 1 if span[0] <= start else 0
    return text, [span, (start + shift, end + shift)], variant


# ------------------------------------------------------------------------------------------ laterality
_SIDED = re.compile(r"\b(left|right)(\s+(?:[a-z]+\s+){0,2}?)(knee|hip|arm|leg|eye|ear|lung|kidney|breast|"
                    r"shoulder|elbow|wrist|hand|foot|ankle|thigh|calf|flank|lower quadrant|upper quadrant|"
                    r"lower lobe|upper lobe|ovary|testis|testicle|forearm|femur|tibia|humerus|clavicle|"
                    r"groin|hemithorax|parotid|lower extremity|upper extremity)\b", re.IGNORECASE)
_QUADRANT_ABBR = {"RLQ": "LLQ", "LLQ": "RLQ", "RUQ": "LUQ", "LUQ": "RUQ"}


def inject_laterality(record_text: str, rng: random.Random, finder: DrugFinder) -> tuple[str, list, str] | None:
    by_part: dict[str, list[re.Match]] = defaultdict(list)
    for match in _SIDED.finditer(record_text):
        by_part[match.group(3).lower()].append(match)
    abbr = list(re.finditer(r"\b(RLQ|LLQ|RUQ|LUQ)\b", record_text))
    candidates = [ms for ms in by_part.values() if len(ms) >= 2 and len({m.group(1).lower() for m in ms}) == 1]
    if abbr:
        for word in ("lower quadrant", "upper quadrant"):
            full = by_part.get(word, [])
            if full:
                candidates.append(full + abbr)
    if not candidates:
        return None
    group = rng.choice(candidates)
    target = rng.choice(group)
    others = [m for m in group if m is not target]
    if target.re is _SIDED:
        side = target.group(1)
        flipped = {"left": "right", "right": "left", "Left": "Right", "Right": "Left",
                   "LEFT": "RIGHT", "RIGHT": "LEFT"}.get(side, "left")
        text = record_text[:target.start(1)] + flipped + record_text[target.end(1):]
        delta = len(flipped) - len(side)
        span = (target.start(), target.end() + delta)
        variant = "word"
    else:
        flipped = _QUADRANT_ABBR[target.group(1)]
        text = record_text[:target.start()] + flipped + record_text[target.end():]
        delta, span, variant = 0, (target.start(), target.end()), "abbreviation"
    spans = [span] + [(m.start() + (delta if m.start() > target.start() else 0),
                       m.end() + (delta if m.start() > target.start() else 0)) for m in others]
    return text, spans, variant


# ----------------------------------------------------------------------------------------- duplication
DUPLICATE_CLASSES = {
    "ssri": ["sertraline", "fluoxetine", "citalopram", "escitalopram", "paroxetine"],
    "ppi": ["omeprazole", "pantoprazole", "esomeprazole", "lansoprazole"],
    "statin": ["atorvastatin", "simvastatin", "rosuvastatin", "pravastatin"],
    "ace_inhibitor": ["lisinopril", "enalapril", "ramipril", "captopril"],
    "arb": ["losartan", "valsartan", "irbesartan"],
    "beta_blocker": ["metoprolol", "atenolol", "propranolol", "carvedilol"],
    "nsaid": ["ibuprofen", "naproxen", "indomethacin", "ketorolac", "diclofenac"],
    "benzodiazepine": ["lorazepam", "diazepam", "alprazolam", "clonazepam"],
    "fluoroquinolone": ["ciprofloxacin", "levofloxacin", "moxifloxacin"],
    "macrolide": ["azithromycin", "clarithromycin", "erythromycin"],
    "cephalosporin": ["ceftriaxone", "cefazolin", "cephalexin", "cefepime", "cefuroxime"],
    "atypical_antipsychotic": ["olanzapine", "risperidone", "quetiapine", "aripiprazole"],
    "sulfonylurea": ["glipizide", "glyburide", "glimepiride"],
    "dihydropyridine_ccb": ["amlodipine", "nifedipine", "felodipine"],
    "tetracycline": ["doxycycline", "minocycline", "tetracycline"],
    "h2_blocker": ["famotidine", "ranitidine", "cimetidine"],
    "loop_diuretic": ["furosemide", "bumetanide", "torsemide"],
}
ADD_SECOND = ["{x} and {y}", "{x} plus {y}", "{x} together with {y}", "both {x} and {y}", "{x} and {y} concurrently",
              "{x}, along with {y},", "{x} + {y}", "{x} in combination with {y}"]
DUPLICATE_SENTENCES = [
    "{Subj} was started on {x} and {y}.",
    "{X} and {y} were initiated today.",
    "Plan: start {x} and {y}.",
    "{Subj} is prescribed {x} as well as {y}.",
    "{X} {d1} daily and {y} {d2} daily were begun.",
    "Medications started: {x}, {y}.",
    "The patient was given {x} and {y}.",
    "We will begin {x} together with {y}.",
    "Started {x} and {y} on admission.",
    "{Subj} was discharged on {x} and {y}.",
]


def inject_duplicate(record_text: str, rng: random.Random, finder: DrugFinder) -> tuple[str, list, str] | None:
    sex = _note_sex(record_text) or "female"
    p = _pronouns(sex)
    drugs = finder.mentions(record_text)
    in_class = []
    for start, end, entry in drugs:
        for cls in entry.group_values("cls"):
            if cls in DUPLICATE_CLASSES:
                in_class.append((start, end, cls))
    if in_class and rng.random() < 0.6:
        start, end, cls = rng.choice(in_class)
        written = record_text[start:end]
        other = rng.choice([d for d in DUPLICATE_CLASSES[cls] if d.lower() != written.lower()])
        phrase = rng.choice(ADD_SECOND).format(x=written, y=other)
        text = record_text[:start] + phrase + record_text[end:]
        return text, [(start, start + len(phrase))], "second_added"
    cls = rng.choice(sorted(DUPLICATE_CLASSES))
    x, y = rng.sample(DUPLICATE_CLASSES[cls], 2)
    sentence = rng.choice(DUPLICATE_SENTENCES).format(x=x, y=y, X=_cap(x), Subj=_cap(p["subj"]),
                                                      d1=rng.choice(["10 mg", "20 mg", "50 mg"]),
                                                      d2=rng.choice(["20 mg", "40 mg", "100 mg"]))
    text, span = _insert_sentence(record_text, sentence, rng)
    return text, [span], "sentence_added"


INJECTORS: dict[str, Callable[[str, random.Random, DrugFinder], tuple[str, list, str] | None]] = {
    "allergy_conflict": inject_allergy,
    "pregnancy_contraindication": inject_pregnancy,
    "sex_mismatch": inject_sex,
    "laterality_conflict": inject_laterality,
    "presence_conflict": inject_presence,
    "duplicate_class": inject_duplicate,
}


def build_injections(records: Sequence[Any], seed: int = SEED) -> list[Injected]:
    """One injected note per (note, kind) where the kind can be injected into the note."""
    finder = DrugFinder()
    out: list[Injected] = []
    for kind in KINDS:
        rng = random.Random(f"{seed}-{kind}")
        for record in records:
            result = INJECTORS[kind](record.text, rng, finder)
            if result is None:
                continue
            text, spans, variant = result
            out.append(Injected(record.text_id, kind, variant, text, spans))
    return out


# ----------------------------------------------------------------------------------------- measuring
def make_runner(context: bool = False) -> Callable[[str], tuple[Any, list[tuple[int, int]]]]:
    """A function text -> (Doc, sentence spans): spaCy blank English + medcorr's sentencizer, or a medspaCy
    pipeline with ConText when ``context``."""
    import spacy

    from medcorr.sentences import sentence_spans

    if context:
        import medspacy

        nlp = medspacy.load(medspacy_enable=["medspacy_pyrush", "medspacy_context"])
        nlp.replace_pipe("medspacy_pyrush", "medcorr_sentencizer")
    else:
        nlp = spacy.blank("en")
        nlp.add_pipe("medcorr_sentencizer")

    def run(text: str) -> tuple[Any, list[tuple[int, int]]]:
        doc = nlp(text)
        return doc, sentence_spans(doc)

    return run


def _overlaps(spans: Iterable[tuple[int, int]], targets: Iterable[tuple[int, int]]) -> bool:
    targets = list(targets)
    return any(s < te and ts < e for s, e in spans for ts, te in targets)


def measure(records: Sequence[Any], checks: Any, run: Callable, seed: int = SEED) -> dict[str, Any]:
    """Recall on injected notes, false alarms on their twins, firings on every note as written."""
    originals = {r.text_id: r for r in records}
    written: dict[str, list[Any]] = {}
    for record in records:
        doc, spans = run(record.text)
        written[record.text_id] = checks(doc, spans)
    injected = build_injections(records, seed)
    per_kind: dict[str, dict[str, Any]] = {}
    variants: dict[str, Counter] = defaultdict(Counter)
    variant_hits: dict[str, Counter] = defaultdict(Counter)
    for item in injected:
        doc, spans = run(item.text)
        results = checks(doc, spans)
        hit = any(r.kind == item.kind and _overlaps(r.evidence_spans, item.spans) for r in results)
        stats = per_kind.setdefault(item.kind, {"injected": 0, "recalled": 0, "twin_ids": set()})
        stats["injected"] += 1
        stats["recalled"] += int(hit)
        stats["twin_ids"].add(item.text_id)
        variants[item.kind][item.variant] += 1
        variant_hits[item.kind][item.variant] += int(hit)
    table = {}
    for kind in KINDS:
        stats = per_kind.get(kind, {"injected": 0, "recalled": 0, "twin_ids": set()})
        twins = sorted(stats["twin_ids"])
        false_alarms = [t for t in twins if any(r.kind == kind for r in written[t])]
        table[kind] = {
            "injected": stats["injected"],
            "recall": round(stats["recalled"] / stats["injected"], 4) if stats["injected"] else None,
            "twins": len(twins),
            "twin_false_alarms": len(false_alarms),
            "twin_false_alarm_rate": round(len(false_alarms) / len(twins), 4) if twins else None,
            "variants": {v: [variant_hits[kind][v], n] for v, n in sorted(variants[kind].items())},
        }
    firings = []
    for text_id, results in written.items():
        text = originals[text_id].text
        for r in results:
            firings.append({"text_id": text_id, "kind": r.kind, "error_type": r.error_type.value,
                            "sentence": r.sentence, "cited": [text[s:e] for s, e in r.evidence_spans],
                            "reason": r.reason})
    notes_fired = {f["text_id"] for f in firings}
    by_kind_notes = {k: len({f["text_id"] for f in firings if f["kind"] == k}) for k in KINDS}
    return {"seed": seed, "notes": len(records), "table": table, "as_written": {
        "notes_fired": len(notes_fired), "rate": round(len(notes_fired) / len(records), 4),
        "notes_fired_per_kind": by_kind_notes, "firings": firings}}


def time_checks(records: Sequence[Any], checks: Any, rounds: int = 3) -> dict[str, float]:
    """ms per note of the checks alone and of the default medcorr pipeline (spaCy blank + medcorr), on the
    same notes, rounds interleaved; medians."""
    import statistics

    import spacy

    from medcorr.sentences import sentence_spans

    nlp = spacy.blank("en")
    nlp.add_pipe("medcorr")
    texts = [r.text for r in records]
    list(nlp.pipe(texts[:16]))  # warm up
    docs = list(nlp.pipe(texts))
    spans = [sentence_spans(doc) for doc in docs]
    pipe_ms, check_ms = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        list(nlp.pipe(texts))
        pipe_ms.append((time.perf_counter() - t0) * 1000 / len(texts))
        t0 = time.perf_counter()
        for doc, sp in zip(docs, spans):
            checks(doc, sp)
        check_ms.append((time.perf_counter() - t0) * 1000 / len(texts))
    pipe, check = statistics.median(pipe_ms), statistics.median(check_ms)
    return {"pipeline_ms_per_note": round(pipe, 3), "checks_ms_per_note": round(check, 3),
            "checks_share_of_pipeline": round(check / pipe, 4), "rounds": rounds,
            "pipeline_passes": [round(x, 3) for x in pipe_ms], "checks_passes": [round(x, 3) for x in check_ms]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--medec", default=str(DEFAULT_MEDEC), help="MEDEC CSV (default: ../shared/medec/...)")
    parser.add_argument("--json", default="", help="write the full measurement (incl. every firing) here")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--context", action="store_true", help="medspaCy pipeline with ConText instead of blank")
    parser.add_argument("--speed", action="store_true", help="also time the checks against the default pipeline")
    args = parser.parse_args(argv)

    from medcorr.checks import DEFAULT_ENABLED, EvidenceChecks
    from medcorr.medec.io import read_medec

    records = read_medec(args.medec)
    checks = EvidenceChecks(enabled={k: True for k in KINDS})  # every kind is measured, default or not
    report = measure(records, checks, make_runner(args.context), args.seed)
    report["enabled"] = dict(DEFAULT_ENABLED)
    report["context"] = args.context
    print(f"{'kind':28s} {'on':>3s} {'injected':>8s} {'recall':>7s} {'twins':>6s} {'false alarms':>12s} "
          f"{'as written':>10s}   (on = on by default)")
    for kind, row in report["table"].items():
        recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        rate = "-" if row["twin_false_alarm_rate"] is None else f"{row['twin_false_alarm_rate']:.3%}"
        print(f"{kind:28s} {'yes' if report['enabled'].get(kind) else 'no':>3s} {row['injected']:8d} {recall:>7s} "
              f"{row['twins']:6d} {row['twin_false_alarms']:4d} {rate:>7s} "
              f"{report['as_written']['notes_fired_per_kind'][kind]:10d}")
    written = report["as_written"]
    default_notes = {f["text_id"] for f in written["firings"] if DEFAULT_ENABLED.get(f["kind"])}
    written["notes_fired_default_kinds"] = len(default_notes)
    print(f"notes as written with a firing: {written['notes_fired']} / {report['notes']} ({written['rate']:.2%}); "
          f"by the kinds on by default: {len(default_notes)}")
    for firing in written["firings"]:
        print(f"  {firing['text_id']}: {firing['kind']} cites {firing['cited']} - {firing['reason']}")
    if args.speed:
        report["speed"] = time_checks(records, EvidenceChecks())
        print("speed:", json.dumps(report["speed"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
