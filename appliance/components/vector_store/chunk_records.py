"""Each chunk's text and source (path, page, section), beside its vector in Chroma.

Chroma keeps what a search needs: the vector and the fields the access filter reads (doc_id,
collection, groups). The rest of a chunk is a row here, in the catalog's database (SQLite on
one machine, the cluster's PostgreSQL on several: every node already shares it). Measured with
bench/chroma_delete.py (medians of three, bench/README.md): Chroma's local store spends most of
a big document's delete on per-chunk data, its texts above all (10,890 chunks: 4.21 s with
texts and the dozen metadata keys written before, 1.83 s without the texts, 1.25 s with only
the three filter fields), while one indexed `DELETE ... WHERE doc_id` here takes about 30 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, inspect, text

from appliance.database import Database
from appliance.domain import Chunk
from appliance.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id   TEXT PRIMARY KEY,   -- doc_id:version:n, as in Chroma
    doc_id     TEXT NOT NULL,
    version    TEXT NOT NULL,
    n          INTEGER NOT NULL,
    path       TEXT NOT NULL,
    page       INTEGER,
    section    TEXT,
    file_type  TEXT NOT NULL,
    text       TEXT NOT NULL,
    title      TEXT              -- the document's title, read with the text by retrieval
);
CREATE INDEX IF NOT EXISTS chunks_doc_id ON chunks (doc_id)
"""
_COLUMNS = "chunk_id, doc_id, version, n, path, page, section, file_type, text, title"
# Ids per statement: under SQLite's oldest limit of 999 bound parameters.
_IDS_PER_STATEMENT = 900


@dataclass(frozen=True)
class ChunkRecord:
    doc_id: str
    version: str
    n: int
    path: str
    page: int | None
    section: str | None
    file_type: str
    text: str
    title: str | None = None

    def metadata(self) -> dict[str, Any]:
        """The fields under the metadata keys retrieval reads (those Chroma held before)."""
        return {
            "doc_id": self.doc_id,
            "version": self.version,
            "chunk_index": self.n,
            "path": self.path,
            "page": self.page,
            "section": self.section,
            "file_type": self.file_type,
            "title": self.title,
        }


def _add_title_column(database: Database) -> None:
    """A catalog made before chunks had titles gets the column (its rows keep none)."""
    with database.transaction() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("chunks")}
        if "title" not in columns:
            connection.execute(text("ALTER TABLE chunks ADD COLUMN title TEXT"))


def _batches(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        yield list(ids[start : start + _IDS_PER_STATEMENT])


def _records(rows: Iterable[Sequence[Any]]) -> dict[str, ChunkRecord]:
    return {row[0]: ChunkRecord(*row[1:]) for row in rows}


class ChunkRecords:
    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    def for_settings(cls, settings: Settings) -> ChunkRecords:
        database = Database.for_settings(settings, _SCHEMA)
        _add_title_column(database)
        return cls(database)

    def put(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    f"INSERT INTO chunks ({_COLUMNS}) VALUES (:chunk_id, :doc_id, :version, :n,"
                    " :path, :page, :section, :file_type, :text, :title) ON CONFLICT (chunk_id)"
                    " DO UPDATE SET doc_id=excluded.doc_id, version=excluded.version,"
                    " n=excluded.n, path=excluded.path, page=excluded.page,"
                    " section=excluded.section, file_type=excluded.file_type,"
                    " text=excluded.text, title=excluded.title"
                ),
                [
                    {
                        "chunk_id": chunk.chunk_id,
                        "doc_id": chunk.doc_id,
                        "version": chunk.version,
                        "n": chunk.n,
                        "path": chunk.path,
                        "page": chunk.page,
                        "section": chunk.section or None,
                        "file_type": chunk.file_type,
                        "text": chunk.text,
                        "title": chunk.title or None,
                    }
                    for chunk in chunks
                ],
            )

    def get(self, chunk_ids: Sequence[str]) -> dict[str, ChunkRecord]:
        """The records of these chunks that are here, by chunk id."""
        found: dict[str, ChunkRecord] = {}
        query = text(f"SELECT {_COLUMNS} FROM chunks WHERE chunk_id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        with self._db.transaction() as connection:
            for batch in _batches(chunk_ids):
                found |= _records(connection.execute(query, {"ids": batch}))
        return found

    def of_document(self, doc_id: str) -> dict[str, ChunkRecord]:
        with self._db.transaction() as connection:
            rows = connection.execute(
                text(f"SELECT {_COLUMNS} FROM chunks WHERE doc_id = :d"), {"d": doc_id}
            )
            return _records(rows)

    def all(self) -> dict[str, ChunkRecord]:
        with self._db.transaction() as connection:
            return _records(connection.execute(text(f"SELECT {_COLUMNS} FROM chunks")))

    def delete_document(self, doc_id: str) -> None:
        with self._db.transaction() as connection:
            connection.execute(text("DELETE FROM chunks WHERE doc_id = :d"), {"d": doc_id})

    def delete_other_versions(self, keep: Mapping[str, str]) -> None:
        """Drops these documents' (doc_id -> version) records of any other version, including
        those of a write that failed before its chunks reached Chroma."""
        with self._db.transaction() as connection:
            for doc_id, version in keep.items():
                connection.execute(
                    text("DELETE FROM chunks WHERE doc_id = :d AND version <> :v"),
                    {"d": doc_id, "v": version},
                )
