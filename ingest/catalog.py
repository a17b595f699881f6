"""The document catalog: one row per document with its indexed version, status and error."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from appliance.database import Database
from appliance.domain import DocumentAccess
from appliance.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id      TEXT PRIMARY KEY,
    path        TEXT NOT NULL,
    version     TEXT,            -- content version whose chunks are in the index, if any
    sha256      TEXT,
    status      TEXT NOT NULL,   -- indexed | failed
    error       TEXT,
    chunks      INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    updated_at  DOUBLE PRECISION NOT NULL,
    groups      TEXT NOT NULL DEFAULT '[]',  -- JSON list: who may read it
    collection  TEXT NOT NULL DEFAULT ''
);
-- Groups and collection given at upload (or on the CLI), which win over the folder mapping.
CREATE TABLE IF NOT EXISTS access_overrides (
    doc_id      TEXT PRIMARY KEY,
    groups      TEXT NOT NULL,
    collection  TEXT NOT NULL
)
"""
_COLUMNS = (
    "doc_id, path, version, sha256, status, error, chunks, bytes, updated_at, groups, collection"
)


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    path: str
    version: str | None
    sha256: str | None
    status: str
    error: str | None
    chunks: int
    bytes: int
    updated_at: float
    groups: tuple[str, ...] = ()
    collection: str = ""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> DocumentRecord:
        return cls(*row[:9], groups=tuple(json.loads(row[9] or "[]")), collection=row[10] or "")

    @property
    def access(self) -> DocumentAccess:
        return DocumentAccess(self.groups, self.collection)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "groups": list(self.groups)}


class Catalog:
    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    def for_settings(cls, settings: Settings) -> Catalog:
        return cls(Database.for_settings(settings, _SCHEMA))

    def _one(self, sql: str, **params: object) -> DocumentRecord | None:
        with self._db.transaction() as connection:
            row = connection.execute(text(sql), params).fetchone()
        return DocumentRecord.from_row(row) if row else None

    def get(self, doc_id: str) -> DocumentRecord | None:
        return self._one(f"SELECT {_COLUMNS} FROM documents WHERE doc_id = :doc_id", doc_id=doc_id)

    def find_by_path(self, path: str) -> DocumentRecord | None:
        return self._one(f"SELECT {_COLUMNS} FROM documents WHERE path = :path", path=path)

    def list(self) -> list[DocumentRecord]:
        with self._db.transaction() as connection:
            rows = connection.execute(
                text(f"SELECT {_COLUMNS} FROM documents ORDER BY path")
            ).fetchall()
        return [DocumentRecord.from_row(row) for row in rows]

    def mark_indexed(
        self,
        doc_id: str,
        path: str,
        version: str,
        sha256: str,
        chunks: int,
        size: int,
        access: DocumentAccess,
    ) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO documents (doc_id, path, version, sha256, status, error, chunks,"
                    " bytes, updated_at, groups, collection) VALUES (:doc_id, :path, :version,"
                    " :sha256, 'indexed', NULL, :chunks, :bytes, :now, :groups, :collection)"
                    " ON CONFLICT (doc_id) DO UPDATE SET path=excluded.path,"
                    " version=excluded.version, sha256=excluded.sha256, status='indexed',"
                    " error=NULL, chunks=excluded.chunks, bytes=excluded.bytes,"
                    " updated_at=excluded.updated_at, groups=excluded.groups,"
                    " collection=excluded.collection"
                ),
                dict(
                    doc_id=doc_id,
                    path=path,
                    version=version,
                    sha256=sha256,
                    chunks=chunks,
                    bytes=size,
                    now=time.time(),
                    groups=json.dumps(list(access.groups)),
                    collection=access.collection,
                ),
            )

    def mark_failed(self, doc_id: str, path: str, error: str, access: DocumentAccess) -> None:
        # The last good version (if any) stays indexed and keeps its row's version and chunks;
        # the groups are recorded so the failure is listed only to those who may read it.
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO documents (doc_id, path, status, error, updated_at, groups,"
                    " collection) VALUES (:doc_id, :path, 'failed', :error, :now, :groups,"
                    " :collection) ON CONFLICT (doc_id) DO UPDATE SET status='failed',"
                    " error=excluded.error, updated_at=excluded.updated_at"
                ),
                dict(
                    doc_id=doc_id,
                    path=path,
                    error=error,
                    now=time.time(),
                    groups=json.dumps(list(access.groups)),
                    collection=access.collection,
                ),
            )

    def set_access_override(self, doc_id: str, access: DocumentAccess) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO access_overrides (doc_id, groups, collection) VALUES"
                    " (:doc_id, :groups, :collection) ON CONFLICT (doc_id) DO UPDATE SET"
                    " groups=excluded.groups, collection=excluded.collection"
                ),
                dict(
                    doc_id=doc_id,
                    groups=json.dumps(list(access.groups)),
                    collection=access.collection,
                ),
            )

    def access_override(self, doc_id: str) -> DocumentAccess | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                text("SELECT groups, collection FROM access_overrides WHERE doc_id = :doc_id"),
                {"doc_id": doc_id},
            ).fetchone()
        return DocumentAccess(tuple(json.loads(row[0])), row[1]) if row else None

    def delete(self, doc_id: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(text("DELETE FROM documents WHERE doc_id = :d"), {"d": doc_id})
            connection.execute(
                text("DELETE FROM access_overrides WHERE doc_id = :d"), {"d": doc_id}
            )
