"""Retrieval-memory probe: flag a note by the labels of its nearest training notes (TF-IDF cosine).

Same grouped folds as ``medcorr cv`` (seed 13), so a note's clean twin is never retrieved for it. Also
prints how similar each test note is to its nearest training note: without near-duplicate vignettes
across folds, a memory has nothing to recall. Needs scikit-learn.

    python onnx/experiments/retrieval_knn.py ../shared/medec/MEDEC-MS-ValidationSet-with-GroundTruth-and-ErrorType.csv
"""
import json
import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from medcorr.train.data import read_labelled
from medcorr.train.folds import grouped_folds


def main(paths: list[str], n_folds: int = 5, seed: int = 13) -> dict:
    notes = read_labelled(paths)
    folds = np.array(grouped_folds([n.text for n in notes], n_folds, seed))
    labels = np.array([n.has_error for n in notes])
    vectors = TfidfVectorizer(sublinear_tf=True).fit_transform([n.text for n in notes])
    similarity = (vectors @ vectors.T).toarray()
    report = {}
    for k in (1, 5, 15):
        accuracy, nearest = [], []
        for fold in range(n_folds):
            test, train = np.where(folds == fold)[0], np.where(folds != fold)[0]
            sims = similarity[np.ix_(test, train)]
            votes = labels[train][np.argsort(-sims, axis=1)[:, :k]].mean(axis=1) >= 0.5
            accuracy.append(float((votes == labels[test]).mean()))
            nearest += list(sims.max(axis=1))
        report[f"k={k}"] = {"flag_accuracy_mean": float(np.mean(accuracy)), "flag_accuracy_std": float(np.std(accuracy))}
    report["nearest_train_similarity"] = {"median": float(np.median(nearest)), "p95": float(np.percentile(nearest, 95))}
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
