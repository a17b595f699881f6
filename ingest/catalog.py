"""The document catalog: one row per document with its indexed version, status and error."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
    updated_at  REAL NOT NULL
);
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
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        with self._connect() as connection:
            connection.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # WAL lets the API read while a worker writes; each call is one short transaction.
        connection = sqlite3.connect(self._path, timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            with connection:
                yield connection
        finally:
            connection.close()

    def get(self, doc_id: str) -> DocumentRecord | None:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT * FROM documents WHERE doc_id = ?", (doc_id,)
            ).fetchone()
        return DocumentRecord(*row) if row else None

    def find_by_path(self, path: str) -> DocumentRecord | None:
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM documents WHERE path = ?", (path,)).fetchone()
        return DocumentRecord(*row) if row else None

    def list(self) -> list[DocumentRecord]:
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM documents ORDER BY path").fetchall()
        return [DocumentRecord(*row) for row in rows]

    def mark_indexed(
        self, doc_id: str, path: str, version: str, sha256: str, chunks: int, size: int
    ) -> None:
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO documents (doc_id, path, version, sha256, status, error, chunks,"
                " bytes, updated_at) VALUES (?, ?, ?, ?, 'indexed', NULL, ?, ?, ?)"
                " ON CONFLICT(doc_id) DO UPDATE SET path=excluded.path, version=excluded.version,"
                " sha256=excluded.sha256, status='indexed', error=NULL, chunks=excluded.chunks,"
                " bytes=excluded.bytes, updated_at=excluded.updated_at",
                (doc_id, path, version, sha256, chunks, size, time.time()),
            )

    def mark_failed(self, doc_id: str, path: str, error: str) -> None:
        # The last good version (if any) stays indexed and keeps its row's version and chunks.
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO documents (doc_id, path, status, error, updated_at)"
                " VALUES (?, ?, 'failed', ?, ?)"
                " ON CONFLICT(doc_id) DO UPDATE SET status='failed', error=excluded.error,"
                " updated_at=excluded.updated_at",
                (doc_id, path, error, time.time()),
            )

    def delete(self, doc_id: str) -> None:
        with self._connect() as connection:
            connection.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
