"""Kafka connector: FHIR DocumentReferences in, FHIR DetectedIssue Bundles and dead letters out.

``medcorr stream`` (:mod:`medcorr.stream.cli`) runs :class:`medcorr.stream.consumer.StreamProcessor`;
settings live in :mod:`medcorr.stream.config`, record layout in :mod:`medcorr.stream.records`, metrics in
:mod:`medcorr.stream.metrics` and topic setup in :mod:`medcorr.stream.admin`. Imports here stay light.
"""
from __future__ import annotations

__all__ = ["admin", "cli", "config", "consumer", "metrics", "records"]
