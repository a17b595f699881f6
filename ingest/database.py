"""The database behind the catalog and job store: SQLite in the data dir, or a shared PostgreSQL.

SQLite suits one machine. When workers on several machines share the work, `catalog.url`
names a PostgreSQL database they all reach (e.g. postgresql+psycopg://appliance@db/appliance).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event, text

from appliance.settings import Settings


def database_url(settings: Settings) -> str:
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
            for statement in filter(str.strip, schema.split(";")):
                connection.execute(text(statement))

    @classmethod
    def for_settings(cls, settings: Settings, schema: str) -> Database:
        if not settings.catalog.url:
            settings.catalog_path.parent.mkdir(parents=True, exist_ok=True)
        return cls(database_url(settings), schema)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection
