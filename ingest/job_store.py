"""Ingest jobs and their files, in the catalog's SQLite database: what a job listing shows.

A job is a list of files, each with an action (ingest or delete), a status and an error. A
file row is the unit of work: claimed when its turn comes and finished on its own (a Celery task
carries a few, ingest/runner.py), so one bad document fails alone and a worker killed
mid-document redoes only the documents it had in progress.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import text

from appliance.database import Database
from appliance.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,      -- paths | upload | sync | retry
    source      TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    submitted_by TEXT NOT NULL DEFAULT ''  -- the user whose ingestions and deletions it audits
);
CREATE TABLE IF NOT EXISTS job_files (
    job_id      TEXT NOT NULL REFERENCES jobs(job_id),
    n           INTEGER NOT NULL,
    path        TEXT NOT NULL,
    action      TEXT NOT NULL,      -- ingest | delete
    status      TEXT NOT NULL,      -- queued | running | indexed | unchanged | deleted | failed
    error       TEXT,
    chunks      INTEGER NOT NULL DEFAULT 0,
    doc_id      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    worker      TEXT,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, n)
);
CREATE TABLE IF NOT EXISTS sources (
    source_id   TEXT PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    created_at  DOUBLE PRECISION NOT NULL
)
"""
TERMINAL = ("indexed", "unchanged", "deleted", "failed")


@dataclass(frozen=True)
class JobItem:
    """A file to put in a job; `error` makes it failed from the start (a refused upload)."""

    path: str
    action: str = "ingest"
    error: str | None = None


@dataclass(frozen=True)
class JobFile:
    job_id: str
    n: int
    path: str
    action: str
    status: str
    error: str | None
    chunks: int
    doc_id: str | None
    attempts: int
    worker: str | None
    updated_at: float


@dataclass
class Job:
    job_id: str
    kind: str
    source: str | None
    created_at: float
    submitted_by: str = ""
    files: list[JobFile] = field(default_factory=list)

    @property
    def files_total(self) -> int:
        return len(self.files)

    @property
    def files_done(self) -> int:
        return sum(1 for item in self.files if item.status in TERMINAL)

    @property
    def chunks_written(self) -> int:
        return sum(item.chunks for item in self.files if item.status == "indexed")

    @property
    def status(self) -> str:
        if self.files_done == self.files_total:
            return "done"
        return "running" if any(item.status != "queued" for item in self.files) else "queued"

    def count(self, status: str) -> int:
        return sum(1 for item in self.files if item.status == status)

    def to_dict(self, with_files: bool = True) -> dict:
        summary = {
            "job_id": self.job_id,
            "kind": self.kind,
            "source": self.source,
            "created_at": self.created_at,
            "submitted_by": self.submitted_by,
            "status": self.status,
            "files_total": self.files_total,
            "files_done": self.files_done,
            "chunks_written": self.chunks_written,
            "failed": self.count("failed"),
        }
        if with_files:
            summary["files"] = [item.__dict__ for item in self.files]
        return summary


@dataclass(frozen=True)
class Source:
    source_id: str
    path: str
    created_at: float


class JobStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    def for_settings(cls, settings: Settings) -> JobStore:
        return cls(Database.for_settings(settings, _SCHEMA))

    def create(
        self, kind: str, items: list[JobItem], source: str | None = None, submitted_by: str = ""
    ) -> str:
        job_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._db.transaction() as connection:
            connection.execute(
                text("INSERT INTO jobs VALUES (:job_id, :kind, :source, :now, :by)"),
                dict(job_id=job_id, kind=kind, source=source, now=now, by=submitted_by),
            )
            if items:
                connection.execute(
                    text(
                        "INSERT INTO job_files (job_id, n, path, action, status, error,"
                        " updated_at) VALUES (:job_id, :n, :path, :action, :status, :error, :now)"
                    ),
                    [
                        dict(
                            job_id=job_id,
                            n=n,
                            path=item.path,
                            action=item.action,
                            status="failed" if item.error else "queued",
                            error=item.error,
                            now=now,
                        )
                        for n, item in enumerate(items)
                    ],
                )
        return job_id

    def start(self, job_id: str, n: int, worker: str) -> JobFile | None:
        """Claims a file for work and counts the attempt; None if it is already finished."""
        key = dict(job_id=job_id, n=n)
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "UPDATE job_files SET status='running', attempts=attempts+1, worker=:worker,"
                    " updated_at=:now WHERE job_id=:job_id AND n=:n"
                    " AND status IN ('queued', 'running')"
                ),
                dict(key, worker=worker, now=time.time()),
            )
            row = connection.execute(
                text("SELECT * FROM job_files WHERE job_id=:job_id AND n=:n"), key
            ).fetchone()
        if row is None:
            raise KeyError(f"no file {n} in job {job_id}")
        item = JobFile(*row)
        return item if item.status == "running" else None

    def finish(
        self,
        job_id: str,
        n: int,
        status: str,
        chunks: int = 0,
        error: str | None = None,
        doc_id: str | None = None,
    ) -> None:
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "UPDATE job_files SET status=:status, chunks=:chunks, error=:error,"
                    " doc_id=:doc_id, updated_at=:now WHERE job_id=:job_id AND n=:n"
                ),
                dict(
                    status=status,
                    chunks=chunks,
                    error=error,
                    doc_id=doc_id,
                    now=time.time(),
                    job_id=job_id,
                    n=n,
                ),
            )

    def get(self, job_id: str) -> Job | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                text("SELECT * FROM jobs WHERE job_id=:job_id"), {"job_id": job_id}
            ).fetchone()
            if row is None:
                return None
            files = connection.execute(
                text("SELECT * FROM job_files WHERE job_id=:job_id ORDER BY n"),
                {"job_id": job_id},
            ).fetchall()
        return Job(*row, files=[JobFile(*item) for item in files])

    def _job_field(self, job_id: str, column: str) -> object | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                text(f"SELECT {column} FROM jobs WHERE job_id=:job_id"), {"job_id": job_id}
            ).fetchone()
        return row[0] if row else None

    def created_at(self, job_id: str) -> float:
        created = self._job_field(job_id, "created_at")
        if created is None:
            raise KeyError(f"no job {job_id}")
        return float(created)  # type: ignore[arg-type]

    def submitter(self, job_id: str) -> str:
        return str(self._job_field(job_id, "submitted_by") or "")

    def list(self, limit: int = 50) -> list[Job]:
        with self._db.transaction() as connection:
            ids = connection.execute(
                text("SELECT job_id FROM jobs ORDER BY created_at DESC LIMIT :limit"),
                {"limit": limit},
            ).fetchall()
        return [job for (job_id,) in ids if (job := self.get(job_id))]

    def queued(self, job_id: str) -> list[int]:
        with self._db.transaction() as connection:
            rows = connection.execute(
                text("SELECT n FROM job_files WHERE job_id=:job_id AND status='queued' ORDER BY n"),
                {"job_id": job_id},
            ).fetchall()
        return [n for (n,) in rows]

    def add_source(self, path: str) -> Source:
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO sources VALUES (:source_id, :path, :now)"
                    " ON CONFLICT (path) DO NOTHING"
                ),
                dict(source_id=uuid.uuid4().hex[:8], path=path, now=time.time()),
            )
            row = connection.execute(
                text("SELECT * FROM sources WHERE path=:path"), {"path": path}
            ).fetchone()
        return Source(*row)

    def sources(self) -> list[Source]:
        with self._db.transaction() as connection:
            rows = connection.execute(text("SELECT * FROM sources ORDER BY path")).fetchall()
        return [Source(*row) for row in rows]

    def source(self, source_id_or_path: str) -> Source | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                text("SELECT * FROM sources WHERE source_id=:key OR path=:key"),
                {"key": source_id_or_path},
            ).fetchone()
        return Source(*row) if row else None
