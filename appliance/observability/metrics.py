"""Prometheus metrics: timings recorded where the work happens, state read when scraped."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance.auth.principal import Principal
from appliance.domain import Hit

if TYPE_CHECKING:
    from appliance.container import Components
    from appliance.retrieval import Retriever

logger = logging.getLogger("appliance.metrics")
# `*_created` timestamps double the lines and no dashboard of ours reads them.
disable_created_metrics()

INGEST_STAGE_SECONDS = Histogram(
    "appliance_ingest_stage_seconds",
    "Seconds an ingestion stage took: parse for one file; embed and upsert for one write, "
    "which may hold several files' chunks.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
RETRIEVAL_SECONDS = Histogram(
    "appliance_retrieval_seconds",
    "Seconds to retrieve the passages for one question (embedding the query included).",
    ["mode"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "appliance_llm_time_to_first_token_seconds",
    "Seconds from sending a prompt to the inference service to its first streamed token.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
LLM_TOKENS_PER_SECOND = Histogram(
    "appliance_llm_tokens_per_second",
    "Decoding speed of one answer: streamed tokens after the first, per second.",
    buckets=(1, 5, 10, 20, 40, 60, 80, 100, 150, 200, 400),
)

RATE_LIMITED = Counter(
    "appliance_rate_limited",
    "Requests refused with 429 because a key or group was over a usage limit (limits.*).",
    ["scope", "limit"],
)
for _scope in ("key", "group"):
    for _limit in ("requests_per_minute", "tokens_per_day"):
        RATE_LIMITED.labels(_scope, _limit)

_STAGES = ("parse", "embed", "upsert")
# Every stage's series exists from the start, so a rate over it is 0 rather than missing.
for _stage in _STAGES:
    INGEST_STAGE_SECONDS.labels(_stage)
_DOCUMENT_STATES = ("indexed", "failed")
# kombu's Redis transport keeps a queue's messages in one list per priority step.
_PRIORITY_STEPS = (0, 3, 6, 9)  # step 0 is the plain queue name
_PRIORITY_SEPARATOR = "\x06\x16"


def ingest_stage(stage: str) -> AbstractContextManager[Any]:
    """`with ingest_stage("parse"): ...` records how long the block took."""
    if stage not in _STAGES:
        raise ValueError(f"unknown ingestion stage {stage!r}")
    return INGEST_STAGE_SECONDS.labels(stage).time()


class MeteredRetriever:
    """A retriever that records each retrieval's latency."""

    def __init__(self, retriever: Retriever, mode: str) -> None:
        self._retriever = retriever
        self._seconds = RETRIEVAL_SECONDS.labels(mode)

    def retrieve(
        self, question: str, top_k: int, principal: Principal, collections: list[str] | None = None
    ) -> list[Hit]:
        with self._seconds.time():
            return self._retriever.retrieve(question, top_k, principal, collections)


def metered_stream(responses: Iterable[Any]) -> Iterator[Any]:
    """Pass an LLM's streamed responses through, timing the first token and the decode rate.

    vLLM streams one chunk per generated token, so chunks carrying text count tokens. Only a
    stream that ends normally is recorded: a broken one has no meaningful rate.
    """
    sent = time.perf_counter()
    first: float | None = None
    last = sent
    tokens = 0
    for response in responses:
        if getattr(response, "delta", None):
            last = time.perf_counter()
            if first is None:
                first = last
            tokens += 1
        yield response
    if first is None:
        return
    LLM_TIME_TO_FIRST_TOKEN.observe(first - sent)
    if tokens > 1 and last > first:
        LLM_TOKENS_PER_SECOND.observe((tokens - 1) / (last - first))


class MeteredLLM:
    """The LLM as the answer service uses it, with `stream_chat` metered; the rest delegated."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def stream_chat(self, messages: Any, **kwargs: Any) -> Iterator[Any]:
        return metered_stream(self._llm.stream_chat(messages, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)


class ApplianceState(Collector):
    """What is read from the shared stores when scraped, so every node reports the same numbers
    whichever process did the work: queue depth, documents by state, audit records, refusals."""

    def __init__(self, components: Components, queue: str) -> None:
        self._components = components
        self._queue_name = queue

    def collect(self) -> Iterable[Metric]:
        for read in (self._queue, self._documents, self._audit, self._egress):
            try:
                yield from read()
            except Exception as error:  # a store that is down leaves its metric out, not /metrics
                name = read.__name__.lstrip("_")
                logger.warning("metric %s unavailable: %s: %s", name, type(error).__name__, error)

    def _queue(self) -> Iterable[Metric]:
        settings = self._components.settings
        if settings.ingest.mode == "celery":
            broker = settings.broker
            depth = _redis_queue_length(broker.url, self._queue_name, broker.connect_timeout_s)
            where = "messages waiting in the Redis queue"
        else:
            depth = _inline_files_pending(self._components)
            where = "files queued or running in this node's inline ingestion"
        yield GaugeMetricFamily(
            "appliance_ingest_queue_depth", f"Ingestion backlog: {where}.", value=depth
        )

    def _documents(self) -> Iterable[Metric]:
        counts = dict.fromkeys(_DOCUMENT_STATES, 0)
        sql = "SELECT status, COUNT(*) FROM documents GROUP BY status"
        counts.update(_rows(self._components, sql))
        family = GaugeMetricFamily(
            "appliance_documents", "Documents in the catalog by state.", labels=["state"]
        )
        for state, count in sorted(counts.items()):
            family.add_metric([state], count)
        yield family

    def _audit(self) -> Iterable[Metric]:
        head = self._components.audit.head()
        yield CounterMetricFamily(
            "appliance_audit_records",
            "Audit records written since the log began (the signed head's sequence number).",
            value=head.seq if head else 0,
        )

    def _egress(self) -> Iterable[Metric]:
        from appliance.egress import guard

        yield CounterMetricFamily(
            "appliance_egress_refused",
            "Connections and name lookups the egress guard refused in this process.",
            value=guard.refused,
        )


def _rows(components: Components, sql: str) -> dict[str, int]:
    """A GROUP BY count from the catalog's database; empty before its tables exist."""
    from sqlalchemy import inspect, text

    from appliance.database import Database, database_url

    settings = components.settings
    if not settings.catalog.url and not settings.catalog_path.is_file():
        return {}  # nothing ingested yet; scraping must not create the catalog
    database = Database(database_url(settings), "")
    table = "documents" if "FROM documents" in sql else "job_files"
    if not inspect(database.engine).has_table(table):
        return {}
    with database.transaction() as connection:
        return {str(row[0]): int(row[1]) for row in connection.execute(text(sql))}


def _inline_files_pending(components: Components) -> int:
    rows = _rows(
        components,
        "SELECT status, COUNT(*) FROM job_files WHERE status IN ('queued', 'running') "
        "GROUP BY status",
    )
    return sum(rows.values())


def _redis_queue_length(url: str, queue: str, timeout_s: float) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        keys = [queue] + [f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS[1:]]
        return sum(int(client.llen(key)) for key in keys)
    finally:
        client.close()


def render(components: Components, queue: str) -> bytes:
    """The Prometheus text exposition: this process's timings and the stores' state.

    `queue` is the Celery queue ingestion jobs go to (ingest.celery_app.QUEUE).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything())
    registry.register(ApplianceState(components, queue))
    return generate_latest(registry)


class _Everything(Collector):
    """The process-wide registry (our histograms, Python's process and GC metrics)."""

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
