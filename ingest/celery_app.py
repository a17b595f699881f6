"""The Celery application: Redis broker, late acknowledgement, a few documents per task."""

from __future__ import annotations

from celery import Celery

from appliance.settings import Settings

QUEUE = "ingest"


def create_celery_app(settings: Settings) -> Celery:
    broker = settings.broker
    app = Celery("appliance", broker=broker.url, include=["ingest.tasks"])
    app.conf.update(
        task_default_queue=QUEUE,
        # A task is acknowledged only when its document is done, and a worker killed mid-way
        # hands it back: nothing is lost, and the task is idempotent so nothing doubles.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # job state lives in the catalog, not in a result backend
        task_time_limit=settings.ingest.document_timeout_s + 60,
        task_soft_time_limit=settings.ingest.document_timeout_s,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=broker.connect_timeout_s,
        broker_transport_options={
            "visibility_timeout": broker.visibility_timeout_s,
            "unacked_restore_interval": broker.restore_interval_s,
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": broker.connect_timeout_s,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
