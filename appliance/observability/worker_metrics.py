"""The ingestion worker's /metrics: its pool processes' stage timings, summed by the main process.

Celery's prefork pool parses and embeds in child processes, so their histograms live in several
processes. prometheus_client's multiprocess mode keeps each process's values in files of one
folder and adds them up when scraped; it must be chosen before prometheus_client is imported.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from appliance.errors import ApplianceError

_FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class MetricsNotExported(ApplianceError):
    status_code = 500


def export_worker_metrics(host: str, port: int, folder: Path) -> None:
    """Serve http://host:port/metrics for this worker and the pool processes it forks."""
    if "prometheus_client" in sys.modules and os.environ.get(_FOLDER_VARIABLE) != str(folder):
        raise MetricsNotExported(
            "prometheus_client was imported before the worker chose its multiprocess mode; "
            "worker metrics cannot be exported from this process"
        )
    # A previous run's files would add its counts to this one's.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[_FOLDER_VARIABLE] = str(folder)

    from celery.signals import worker_process_shutdown
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    import appliance.observability.metrics  # noqa: F401  # the stage histograms, pre-labelled

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise MetricsNotExported(
            f"cannot serve worker metrics on {host}:{port} ({error}); set worker.metrics_port"
        ) from error

    @worker_process_shutdown.connect(weak=False)
    def _forget(pid: int | None = None, **_: object) -> None:
        # A pool process that exits leaves its files; its live gauges must not count any more.
        multiprocess.mark_process_dead(pid or os.getpid())
