"""Registries for swappable backends, chosen in the spaCy config like spacy-llm's models.

``medcorr_detectors`` holds detector factories (``medcorr.OnnxDetector.v1``), ``medcorr_verifiers`` the
verifiers that judge the localised claims (``medcorr.ChatVerifier.v1``, ``medcorr.VotingVerifier.v1``),
``medcorr_checks`` the evidence checks that prove conflicts from the note itself
(``medcorr.EvidenceChecks.v1``), and ``medcorr_generators`` the providers of lexicon alternatives shown to
reviewers (``medcorr.KnowledgeGenerator.v1``). All are catalogue registries attached to spaCy's registry,
so a ``.cfg`` can write ``@medcorr_verifiers = "medcorr.ChatVerifier.v1"``.
"""
from __future__ import annotations

import catalogue
from spacy.util import registry

for _name in ("medcorr_detectors", "medcorr_generators", "medcorr_verifiers", "medcorr_checks"):
    if not hasattr(registry, _name):
        setattr(registry, _name, catalogue.create("spacy", _name, entry_points=True))

detectors = registry.medcorr_detectors
generators = registry.medcorr_generators
verifiers = registry.medcorr_verifiers
checks = registry.medcorr_checks
