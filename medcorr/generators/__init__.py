"""Correction generators. Importing this package registers every built-in backend."""
from medcorr.generators import knowledge, openai, transformers_gen  # noqa: F401  (registration side effect)
