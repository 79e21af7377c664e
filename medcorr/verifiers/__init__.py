"""Verifier backends: sources that judge the localised claims of a note (see :mod:`medcorr.verifiers.base`).

Importing this package registers the built-in backends (``medcorr.ChatVerifier.v1``,
``medcorr.VotingVerifier.v1``); the example bank (:mod:`medcorr.verifiers.bank`) loads only when used.
"""
from medcorr.verifiers import chat, voting  # noqa: F401  (registration side effect)
