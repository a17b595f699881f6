"""Celery tasks; each worker process builds the embedder and stores once, on first use."""

from __future__ import annotations

import functools
import os

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_init, worker_process_init

from appliance.egress import arm_from_settings
from appliance.settings import Settings, load_settings
from ingest.celery_app import create_celery_app
from ingest.dispatch import TASK_NAME, send_files
from ingest.job_store import JobStore
from ingest.runner import JobFilesRun
from ingest.service import IngestService

settings: Settings = load_settings()
celery_app = create_celery_app(settings)


@functools.cache
def _runtime() -> tuple[JobStore, IngestService]:
    from appliance.container import Components

    service = IngestService.for_components(Components(settings))
    return JobStore.for_settings(settings), service


@worker_init.connect
@worker_process_init.connect
def _arm_the_egress_guard(**_: object) -> None:
    # The main process talks to Redis, the pool processes to Chroma and the catalog. A forked
    # pool inherits the armed guard; arming again covers a pool that does not fork.
    arm_from_settings(settings)


@worker_process_init.connect
def _share_the_cores(**_: object) -> None:
    # Each pool process would otherwise start one torch thread per core: N processes on N cores
    # would then fight over them.
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, settings.worker.concurrency)))


@celery_app.task(name=TASK_NAME, bind=True)
def ingest_files(self: Task, job_id: str, files: int | list[int]) -> None:
    """Some files of a job (one file, as tasks queued by older versions carry, or several)."""
    jobs, service = _runtime()
    numbers = [files] if isinstance(files, int) else list(files)
    run = JobFilesRun(
        jobs, service, job_id, self.request.hostname or "worker", settings.ingest.max_attempts
    )
    try:
        run.run(numbers)
    except SoftTimeLimitExceeded:
        for n in sorted(run.in_progress):
            jobs.finish(
                job_id,
                n,
                "failed",
                error=f"processing took longer than {settings.ingest.document_timeout_s} s a "
                "document (ingest.document_timeout_s)",
            )
        # The files this task had not reached go back to the queue in a task of their own.
        waiting = sorted(set(numbers) & set(jobs.queued(job_id)))
        if waiting:
            send_files(celery_app, job_id, waiting)
