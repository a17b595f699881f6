"""SQL databases of the appliance (catalog, jobs, keys, audit log): SQLite or a shared PostgreSQL.

SQLite in the data dir suits one machine. When workers or API nodes on several machines share
the work, a URL names a PostgreSQL database they all reach
(e.g. postgresql+psycopg://appliance@db/appliance).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text

from appliance.private_dirs import make_private_dirs
from appliance.settings import Settings

# Any constant will do; it only has to be the same in every process creating tables.
_SCHEMA_LOCK = 0x6170706C69616E63


def database_url(settings: Settings) -> str:
    """The catalog's database (documents, jobs, sources, API keys)."""
    return settings.catalog.url or f"sqlite:///{settings.catalog_path}"


@functools.cache
def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(connection, _record) -> None:
            # WAL lets the API read while a worker writes.
            connection.execute("PRAGMA journal_mode=WAL")

        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    def __init__(self, url: str, schema: str) -> None:
        self.engine = _engine(url)
        with self.transaction() as connection:
            if self.dialect == "postgresql":
                # Concurrent CREATE TABLE IF NOT EXISTS of one table fails in PostgreSQL
                # (a unique violation in pg_type) when several nodes start at once.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK}
                )
            for statement in filter(str.strip, schema.split(";")):
                connection.execute(text(statement))

    @classmethod
    def at(cls, url: str, sqlite_path: Path, schema: str) -> Database:
        """The database at `url`, or SQLite at `sqlite_path` (its folder made) when url is empty."""
        if url:
            return cls(url, schema)
        make_private_dirs(sqlite_path.parent)
        if not sqlite_path.exists():
            # Made 0600 before SQLite opens it: its -wal and -shm files take the same mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(sqlite_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return cls(f"sqlite:///{sqlite_path}", schema)

    @classmethod
    def for_settings(cls, settings: Settings, schema: str) -> Database:
        """The catalog's database."""
        return cls.at(settings.catalog.url, settings.catalog_path, schema)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self, immediate: bool = False) -> Iterator[Connection]:
        """One transaction; `immediate` takes SQLite's write lock at its start (BEGIN IMMEDIATE).

        Without it, SQLite lets two writers read the same state before either writes. On
        PostgreSQL `immediate` changes nothing: lock the rows you will change (FOR UPDATE).
        """
        with self.engine.begin() as connection:
            if immediate and self.dialect == "sqlite":
                # pysqlite opens no transaction before a SELECT, so this BEGIN is the first one.
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction whose reads all see one moment, whatever is written meanwhile."""
        with self.engine.connect() as connection:
            if self.dialect == "sqlite":
                with connection.begin():
                    # Without an explicit BEGIN each SELECT would see its own moment; this one
                    # holds the WAL snapshot of the first read until the end.
                    connection.exec_driver_sql("BEGIN")
                    yield connection
                return
            connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield connection
