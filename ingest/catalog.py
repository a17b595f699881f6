"""The document catalog: one row per document with its indexed version, status and error."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text

from appliance.settings import Settings
from appliance.database import Database

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
    updated_at  DOUBLE PRECISION NOT NULL
)
"""


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


class Catalog:
    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    def for_settings(cls, settings: Settings) -> Catalog:
        return cls(Database.for_settings(settings, _SCHEMA))

    def _one(self, sql: str, **params: object) -> DocumentRecord | None:
        with self._db.transaction() as connection:
            row = connection.execute(text(sql), params).fetchone()
        return DocumentRecord(*row) if row else None

    def get(self, doc_id: str) -> DocumentRecord | None:
        return self._one("SELECT * FROM documents WHERE doc_id = :doc_id", doc_id=doc_id)

    def find_by_path(self, path: str) -> DocumentRecord | None:
        return self._one("SELECT * FROM documents WHERE path = :path", path=path)

    def list(self) -> list[DocumentRecord]:
        with self._db.transaction() as connection:
            rows = connection.execute(text("SELECT * FROM documents ORDER BY path")).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def mark_indexed(
        self, doc_id: str, path: str, version: str, sha256: str, chunks: int, size: int
    ) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO documents (doc_id, path, version, sha256, status, error, chunks,"
                    " bytes, updated_at) VALUES (:doc_id, :path, :version, :sha256, 'indexed',"
                    " NULL, :chunks, :bytes, :now) ON CONFLICT (doc_id) DO UPDATE SET"
                    " path=excluded.path, version=excluded.version, sha256=excluded.sha256,"
                    " status='indexed', error=NULL, chunks=excluded.chunks, bytes=excluded.bytes,"
                    " updated_at=excluded.updated_at"
                ),
                dict(
                    doc_id=doc_id,
                    path=path,
                    version=version,
                    sha256=sha256,
                    chunks=chunks,
                    bytes=size,
                    now=time.time(),
                ),
            )

    def mark_failed(self, doc_id: str, path: str, error: str) -> None:
        # The last good version (if any) stays indexed and keeps its row's version and chunks.
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO documents (doc_id, path, status, error, updated_at)"
                    " VALUES (:doc_id, :path, 'failed', :error, :now) ON CONFLICT (doc_id)"
                    " DO UPDATE SET status='failed', error=excluded.error,"
                    " updated_at=excluded.updated_at"
                ),
                dict(doc_id=doc_id, path=path, error=error, now=time.time()),
            )

    def delete(self, doc_id: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(text("DELETE FROM documents WHERE doc_id = :d"), {"d": doc_id})
