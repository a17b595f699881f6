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
from ingest.dispatch import TASK_NAME
from ingest.job_store import JobStore
from ingest.runner import run_job_file
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
def ingest_file(self: Task, job_id: str, n: int) -> None:
    jobs, service = _runtime()
    try:
        run_job_file(
            jobs,
            service,
            job_id,
            n,
            self.request.hostname or "worker",
            settings.ingest.max_attempts,
        )
    except SoftTimeLimitExceeded:
        jobs.finish(
            job_id,
            n,
            "failed",
            error=f"processing took longer than {settings.ingest.document_timeout_s} s "
            "(ingest.document_timeout_s)",
        )
