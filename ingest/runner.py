"""Runs one file of a job: the unit of work, the same inline and in a Celery worker."""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.errors import DocumentNotFound
from ingest.job_store import JobStore
from ingest.service import IngestService

log = logging.getLogger(__name__)


def run_job_file(
    jobs: JobStore, service: IngestService, job_id: str, n: int, worker: str, max_attempts: int
) -> None:
    item = jobs.start(job_id, n, worker)
    if item is None:
        return  # finished already: a task delivered again after its worker died post-commit
    if item.attempts > max_attempts:
        # The worker died on every try (a parser crash, the memory limit): stop the loop here.
        error = (
            f"{Path(item.path).name}: the worker stopped {max_attempts} times while processing "
            "this document; it was not retried again"
        )
        jobs.finish(job_id, n, "failed", error=error)
        return
    actor = jobs.submitter(job_id) or f"worker:{worker}"
    if item.action == "delete":
        try:
            doc_id = service.delete(item.path)
        except DocumentNotFound:
            doc_id = None  # already gone: the goal is reached
        jobs.finish(job_id, n, "deleted", doc_id=doc_id)
        service.record("delete", actor, {"job_id": job_id, "path": item.path, "doc_id": doc_id})
        return
    try:
        outcome = service.ingest_file(Path(item.path))
    except Exception as error:  # an unexpected failure ends this file, not the job or worker
        log.exception("ingesting %s failed", item.path)
        jobs.finish(job_id, n, "failed", error=f"internal error: {type(error).__name__}: {error}")
        raise
    jobs.finish(job_id, n, outcome.status, outcome.chunks, outcome.error, outcome.doc_id)
    service.record("ingest", actor, {"job_id": job_id, "worker": worker, **outcome.to_dict()})
