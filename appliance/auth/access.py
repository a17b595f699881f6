"""Which groups may read a document, and the search filter that applies a principal's groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.auth.principal import Principal
from appliance.domain import DocumentAccess
from appliance.settings.settings import AccessSettings


def access_for_path(settings: AccessSettings, path: Path) -> DocumentAccess:
    """The mapping of the deepest configured folder holding `path`, else the defaults."""
    resolved = path.resolve()
    best: tuple[int, DocumentAccess] | None = None
    for source in settings.sources:
        folder = source.path.resolve()
        if resolved.is_relative_to(folder) and (best is None or len(folder.parts) > best[0]):
            best = (len(folder.parts), DocumentAccess(tuple(source.groups), source.collection))
    if best:
        return best[1]
    return DocumentAccess(tuple(settings.default_groups), settings.default_collection)


def search_filter(
    principal: Principal,
    collections: list[str] | None = None,
    hidden: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """A Chroma `where` clause, so the search itself only sees chunks the principal may read
    (and none of the `hidden` documents, which are being deleted).

    Filtering afterwards would return fewer than k results and leak counts; this keeps top-k k.
    A principal without groups matches a group name no document can have, so it reads nothing.
    """
    clauses: list[dict[str, Any]] = []
    if hidden:
        clauses.append({"doc_id": {"$nin": sorted(hidden)}})
    if not principal.all_groups:
        groups = sorted(principal.groups) or ["\x00no-group"]
        matches = [{"groups": {"$contains": group}} for group in groups]
        clauses.append(matches[0] if len(matches) == 1 else {"$or": matches})
    if collections:
        clauses.append({"collection": {"$in": sorted(collections)}})
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def readable(principal: Principal, collections: list[str] | None, metadata: dict[str, Any]) -> bool:
    """The same test as `search_filter`, for a chunk's metadata (the lexical index's mask)."""
    if collections and metadata.get("collection") not in collections:
        return False
    return principal.may_read(metadata.get("groups") or ())
