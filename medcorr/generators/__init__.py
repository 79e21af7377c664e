"""Providers of lexicon alternatives shown to reviewers beside each claim (never corrections).

Importing this package registers the built-in backend (``medcorr.KnowledgeGenerator.v1``).
"""
from medcorr.generators import knowledge  # noqa: F401  (registration side effect)
