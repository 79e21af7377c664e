"""The MEDEC benchmark: run a medcorr pipeline on MEDEC files and score runs like MEDIQA-CORR 2024.

Light imports only (no spaCy): :mod:`medcorr.medec.io` reads MEDEC CSVs and submission files,
:mod:`medcorr.medec.run` runs a pipeline (:func:`~medcorr.medec.run.run_medec`) and
:mod:`medcorr.medec.score` scores a submission (:func:`~medcorr.medec.score.score_submission`).
"""
from __future__ import annotations

from medcorr.medec.io import (
    MedecFormatError,
    MedecRecord,
    MedecSentence,
    Submission,
    SubmissionLine,
    read_medec,
    read_submission,
    write_submission,
)

__all__ = [
    "MedecFormatError",
    "MedecRecord",
    "MedecSentence",
    "Submission",
    "SubmissionLine",
    "read_medec",
    "read_submission",
    "run_medec",
    "score_submission",
    "write_submission",
]


def __getattr__(name: str):
    """Lazy access to :func:`run_medec` and :func:`score_submission` (they import heavier modules)."""
    if name == "run_medec":
        from medcorr.medec.run import run_medec

        return run_medec
    if name == "score_submission":
        from medcorr.medec.score import score_submission

        return score_submission
    raise AttributeError(name)
