"""Correction re-ranking probe: order the generator's candidates by sentence-embedding similarity to the note.

For every MEDEC error note, the knowledge generator's first 100 candidates for the gold error span
(lexicon siblings only, so nothing is learned from the notes) are ranked three ways: the generator's own
prior order, cosine(note before the error sentence, candidate name) and cosine(note before the error
sentence, error sentence with the candidate substituted), with the all-MiniLM-L6-v2 sentence embedding
(mean pooling) that the detector is fine-tuned from. Prints top-1 / top-5 hit rates of the reference
corrected span. Needs the 'train' extra.

    python onnx/experiments/embedding_rerank.py ../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv
"""
import json
import sys

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from medcorr.generators.knowledge import KnowledgeGenerator
from medcorr.substitutions import SubstitutionTable, normalize
from medcorr.train.correction_eval import reference_span
from medcorr.train.data import read_labelled
from medcorr.train.model import default_backbone_path

POOL = 100


@torch.no_grad()
def embed(tokenizer, model, texts: list[str]) -> np.ndarray:
    out = []
    for begin in range(0, len(texts), 64):
        batch = tokenizer(texts[begin: begin + 64], padding=True, truncation=True, max_length=256, return_tensors="pt")
        states = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        out.append(torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1))
    return torch.cat(out).numpy()


def main(paths: list[str]) -> dict:
    path = default_backbone_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
    generator = KnowledgeGenerator(top_k=POOL, max_candidates=POOL)
    generator._table = SubstitutionTable()
    hits = {f"{order}_top{k}": 0 for order in ("prior", "name", "sentence") for k in (1, 5)}
    total = 0
    for note in read_labelled(paths):
        if not (note.has_error and note.corrected_sentence and note.error_type):
            continue
        total += 1
        candidates = [text for text, _ in generator.candidates(note.text[slice(*note.error_span)], note.error_type)]
        if not candidates:
            continue
        start, end = note.sentences[note.error_sentence]
        sentence, (a, b) = note.text[start:end], (note.error_span[0] - start, note.error_span[1] - start)
        vectors = embed(tokenizer, model, [note.text[:start]] + [sentence[:a] + c + sentence[b:] for c in candidates] + candidates)
        context, substituted, names = vectors[0], vectors[1: 1 + len(candidates)], vectors[1 + len(candidates):]
        orders = {"prior": list(range(len(candidates))), "name": list(np.argsort(-(names @ context))),
                  "sentence": list(np.argsort(-(substituted @ context)))}
        target = normalize(reference_span(note))
        for name, order in orders.items():
            ranked = [normalize(candidates[i]) for i in order[:5]]
            hits[f"{name}_top1"] += ranked[0] == target
            hits[f"{name}_top5"] += target in ranked
    return {"error_notes": total, "pool": POOL, **{k: v / total for k, v in hits.items()}}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(main(sys.argv[1:]), indent=2))
