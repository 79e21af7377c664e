"""medcorr: clinical-note error detection and correction for spaCy / medspaCy pipelines."""
from __future__ import annotations

__version__ = "0.1.0"

from medcorr.finding import ERROR_TYPES, ErrorType, Finding, Verdict  # noqa: E402

__all__ = ["ERROR_TYPES", "ErrorType", "Finding", "Verdict", "__version__"]
