"""Correction re-ranking probe: prefer candidates that the training folds' notes mention often.

MEDEC's right answers are exam answers (common, teachable diseases, drugs and organisms), while lexicon
siblings include rare ICD-10-CM leaves. This probe re-ranks the knowledge generator's first POOL candidates
for the gold error span by how many times each candidate occurs in the training folds' note texts and
corrected sentences (learned substitution pairs, also from the training folds, stay first). Same grouped
folds and population as ``medcorr correction-eval --cv-json``: the error notes whose error sentence the
cross-validated detector located. Prints one JSON object (prior order vs salience order, top-1 / top-5).

    python onnx/experiments/salience_rerank.py ../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv onnx/cv-medec-ms-validation.json
"""
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

from medcorr.generators.knowledge import LEXICON_PRIOR, KnowledgeGenerator
from medcorr.substitutions import SubstitutionTable, normalize
from medcorr.train.correction_eval import reference_span
from medcorr.train.data import read_labelled, substitution_examples
from medcorr.train.folds import grouped_folds

POOLS = (20, 100)


def located_error_notes(notes, cv_json: Path) -> set[str]:
    by_id = {n.note_id: n for n in notes}
    summary = json.loads(cv_json.read_text(encoding="utf-8"))
    return {note_id for fold in summary["per_fold"] for note_id, _score, suspect in fold["scores"]
            if by_id[note_id].has_error and suspect == by_id[note_id].error_sentence}


def mentions(corpus: str, term: str) -> int:
    return len(re.findall(r"(?<![a-z0-9])" + re.escape(term) + r"(?![a-z0-9])", corpus)) if len(term) > 2 else 0


def main(csv: str, cv_json: str) -> dict:
    notes = read_labelled([csv])
    folds = grouped_folds([n.text for n in notes], n_folds=5, seed=13)
    located = located_error_notes(notes, Path(cv_json))
    hits = Counter()
    for pool in POOLS:
        for fold in range(5):
            train = [n for n, f in zip(notes, folds) if f != fold]
            corpus = "\n".join(normalize(n.text) + "\n" + normalize(n.corrected_sentence or "") for n in train)
            generator = KnowledgeGenerator(top_k=5, max_candidates=pool)
            generator._table = SubstitutionTable.learn(substitution_examples(train))
            for note in (n for n, f in zip(notes, folds) if f == fold):
                if note.note_id not in located or not note.corrected_sentence or note.error_type is None:
                    continue
                candidates = generator.candidates(note.text[slice(*note.error_span)], note.error_type)
                salient = sorted(candidates, key=lambda c: (-(c[1] > LEXICON_PRIOR),
                                                            -math.log1p(mentions(corpus, normalize(c[0]))), -c[1]))
                target = normalize(reference_span(note))
                for name, ranked in (("prior", candidates), ("salience", salient)):
                    texts = [normalize(t) for t, _ in ranked]
                    hits[f"pool{pool}.{name}_top1"] += bool(texts) and texts[0] == target
                    hits[f"pool{pool}.{name}_top5"] += target in texts[:5]
                hits[f"pool{pool}.notes"] += 1
    return {key: (value if key.endswith("notes") else value / hits[key.split(".")[0] + ".notes"])
            for key, value in sorted(hits.items())}


if __name__ == "__main__":
    result = main(sys.argv[1], sys.argv[2])
    print(json.dumps(result, indent=2))
    (Path(__file__).with_suffix(".json")).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
