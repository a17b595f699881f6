"""Runs a job's files: the unit of work, the same inline and in a Celery worker.

Files are parsed and chunked one at a time, and the chunks of several are embedded and written
together (`ingest.embed_batch_chunks`), because most documents have fewer chunks than one
encoder batch. Each file still gets its own outcome, and a file is claimed only when its turn
comes, so a crash costs an attempt only to the files that were in progress.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from appliance.errors import DocumentNotFound
from ingest.job_store import JobStore
from ingest.service import FileOutcome, IngestService, ReadyFile

log = logging.getLogger(__name__)


class JobFilesRun:
    """One pass over some of a job's files, by one worker."""

    def __init__(
        self, jobs: JobStore, service: IngestService, job_id: str, worker: str, max_attempts: int
    ) -> None:
        self._jobs = jobs
        self._service = service
        self._job_id = job_id
        self._worker = worker
        self._max_attempts = max_attempts
        self._pending: list[tuple[int, ReadyFile]] = []
        self._actor: str | None = None
        # Claimed and not finished yet: what a time limit fails when it strikes.
        self.in_progress: set[int] = set()

    @property
    def actor(self) -> str:
        if self._actor is None:
            self._actor = self._jobs.submitter(self._job_id) or f"worker:{self._worker}"
        return self._actor

    def run(self, files: Sequence[int]) -> None:
        for n in files:
            self._run_one(n)
        self.flush()

    def _finish(
        self,
        n: int,
        status: str,
        chunks: int = 0,
        error: str | None = None,
        doc_id: str | None = None,
    ) -> None:
        self._jobs.finish(self._job_id, n, status, chunks, error, doc_id)
        self.in_progress.discard(n)

    def _finish_outcome(self, n: int, outcome: FileOutcome) -> None:
        self._finish(n, outcome.status, outcome.chunks, outcome.error, outcome.doc_id)
        self._service.record(
            "ingest",
            self.actor,
            {"job_id": self._job_id, "worker": self._worker, **outcome.to_dict()},
        )

    def _internal_error(self, n: int, path: str, error: Exception) -> None:
        log.exception("ingesting %s failed", path)
        self._finish(n, "failed", error=f"internal error: {type(error).__name__}: {error}")

    def _run_one(self, n: int) -> None:
        item = self._jobs.start(self._job_id, n, self._worker)
        if item is None:
            return  # finished already: a task delivered again after its worker died post-commit
        self.in_progress.add(n)
        if item.attempts > self._max_attempts:
            # The worker died on every try (a parser crash, the memory limit): stop the loop here.
            error = (
                f"{Path(item.path).name}: the worker stopped {self._max_attempts} times while "
                "processing this document; it was not retried again"
            )
            self._finish(n, "failed", error=error)
            return
        if item.action == "delete":
            try:
                doc_id = self._service.delete(item.path)
            except DocumentNotFound:
                doc_id = None  # already gone: the goal is reached
            self._finish(n, "deleted", doc_id=doc_id)
            self._service.record(
                "delete", self.actor, {"job_id": self._job_id, "path": item.path, "doc_id": doc_id}
            )
            return
        retried = item.attempts > 1
        if retried:
            # A file tried before goes alone, so one that kills its worker cannot take its
            # neighbours' attempts with it.
            self.flush()
        try:
            since = self._jobs.created_at(self._job_id) if retried else None
            ready = self._service.prepare(Path(item.path), indexed_since=since)
        except Exception as error:  # an unexpected failure ends this file, not the job or worker
            self._internal_error(n, item.path, error)
            return
        if isinstance(ready, FileOutcome):
            self._finish_outcome(n, ready)
            return
        self._pending.append((n, ready))
        pending_chunks = sum(len(ready.chunks) for _, ready in self._pending)
        if retried or pending_chunks >= self._service.embed_batch_chunks:
            self.flush()

    def flush(self) -> None:
        """Embeds and writes the files waiting, and records each one's outcome."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            outcomes = self._service.write([ready for _, ready in batch])
        except Exception as error:  # Chroma or the catalog failed: these files, not the job
            for n, ready in batch:
                self._internal_error(n, str(ready.path), error)
            return
        for (n, _), outcome in zip(batch, outcomes, strict=True):
            self._finish_outcome(n, outcome)


def run_job_files(
    jobs: JobStore,
    service: IngestService,
    job_id: str,
    files: Sequence[int],
    worker: str,
    max_attempts: int,
) -> None:
    JobFilesRun(jobs, service, job_id, worker, max_attempts).run(files)
