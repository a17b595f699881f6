"""Hands a job's files to whoever runs them, chosen by `ingest.mode`: this process, or Celery."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from appliance.errors import QueueUnavailable
from appliance.settings import Settings
from ingest.job_store import JobStore
from ingest.service import IngestService

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "ingest.file"


class Dispatcher(Protocol):
    def dispatch(self, job_id: str, files: list[int]) -> None: ...


class InlineDispatcher:
    """Runs files in this process, now (`background=False`, the CLI) or on one thread (the API).

    One thread, because the embedded Chroma must only ever be written by one writer.
    """

    def __init__(
        self,
        jobs: JobStore,
        service: Callable[[], IngestService],
        settings: Settings,
        background: bool,
    ) -> None:
        self._jobs = jobs
        self._service = service
        self._max_attempts = settings.ingest.max_attempts
        self._executor = ThreadPoolExecutor(1, "ingest") if background else None
        self._lock = threading.Lock()

    def _run(self, job_id: str, files: list[int]) -> None:
        from ingest.runner import run_job_files

        with self._lock:
            run_job_files(self._jobs, self._service(), job_id, files, "inline", self._max_attempts)

    def dispatch(self, job_id: str, files: list[int]) -> None:
        if self._executor:
            self._executor.submit(self._run, job_id, files)
        else:
            self._run(job_id, files)


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        from ingest.celery_app import create_celery_app

        self._app = create_celery_app(settings)
        self._url = settings.broker.url
        self._per_task = max(1, settings.ingest.files_per_task)

    def dispatch(self, job_id: str, files: list[int]) -> None:
        from kombu.exceptions import OperationalError

        try:
            with self._app.producer_or_acquire() as producer:
                for start in range(0, len(files), self._per_task):
                    send_files(self._app, job_id, files[start : start + self._per_task], producer)
        except OperationalError as error:
            raise QueueUnavailable(
                f"the job queue (Redis at {self._url}) is not answering, so the documents were "
                "not queued; check that redis-server is running (broker.url)"
            ) from error


def send_files(app: Celery, job_id: str, files: list[int], producer: object = None) -> None:
    """Queues one task for these files, with time limits that grow with their number."""
    timeout_s = app.conf.task_soft_time_limit * len(files)
    app.send_task(
        TASK_NAME,
        args=[job_id, files],
        producer=producer,
        retry=False,
        soft_time_limit=timeout_s,
        time_limit=timeout_s + 60,
    )


def build_dispatcher(
    settings: Settings, jobs: JobStore, service: Callable[[], IngestService], background: bool
) -> Dispatcher:
    match settings.ingest.mode:
        case "inline":
            return InlineDispatcher(jobs, service, settings, background)
        case "celery":
            return CeleryDispatcher(settings)
    raise ValueError(f"unknown ingest mode {settings.ingest.mode!r}")
