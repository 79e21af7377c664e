"""Registries for swappable backends, chosen in the spaCy config like spacy-llm's models.

``medcorr_detectors`` holds detector factories (``medcorr.OnnxDetector.v1``) and ``medcorr_generators``
holds correction generators (``medcorr.KnowledgeGenerator.v1``, ``medcorr.OpenAIGenerator.v1`` ...).
Both are catalogue registries attached to spaCy's registry, so a ``.cfg`` can write
``@medcorr_generators = "medcorr.OpenAIGenerator.v1"``.
"""
from __future__ import annotations

import catalogue
from spacy.util import registry

if not hasattr(registry, "medcorr_detectors"):
    registry.medcorr_detectors = catalogue.create("spacy", "medcorr_detectors", entry_points=True)
if not hasattr(registry, "medcorr_generators"):
    registry.medcorr_generators = catalogue.create("spacy", "medcorr_generators", entry_points=True)

detectors = registry.medcorr_detectors
generators = registry.medcorr_generators
