"""medspaCy ConText modifier scopes as character ranges, for the components that respect them."""
from __future__ import annotations

from typing import Any, Collection

from spacy.tokens import Doc


def context_scopes(doc: Doc, categories: Collection[str]) -> list[tuple[str, int, int]]:
    """``(CATEGORY, start_char, end_char)`` of every ConText modifier of one of ``categories`` (upper case);
    empty when ConText did not run on ``doc``."""
    if not Doc.has_extension("context_graph"):
        return []
    graph = getattr(doc._, "context_graph", None)
    if graph is None:
        return []
    scopes = []
    for modifier in getattr(graph, "modifiers", ()):
        category = str(modifier.category).upper()
        if category not in categories:
            continue
        scope: Any = modifier.scope_span  # medspaCy 1.3: (start, end) token indices; older: a Span
        if isinstance(scope, tuple):
            scope = doc[scope[0]:scope[1]]
        scopes.append((category, scope.start_char, scope.end_char))
    return scopes
