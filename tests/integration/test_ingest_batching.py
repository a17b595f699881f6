"""Chunks of several files embedded and written together, each file still on its own.

Real Chroma, real embedder, real catalog and job store; a spy counts the embedder's calls.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.components.embedding import Embedder
from appliance.components.vector_store import build_chunk_store
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.domain import Chunk
from appliance.settings import Settings
from ingest.catalog import Catalog
from ingest.job_store import JobItem, JobStore
from ingest.runner import run_job_files
from ingest.service import IngestService
from tests.conftest import CORPUS, settings_for


class EmbedCalls:
    """The real embedder, recording how many texts each call embedded."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.sizes: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._embedder, name)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.sizes.append(len(texts))
        return self._embedder.embed_documents(texts)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    return folder


def build(settings: Settings, embedder: Embedder) -> tuple[IngestService, EmbedCalls]:
    spy = EmbedCalls(embedder)
    store = build_chunk_store(settings)
    return IngestService(settings, spy, store, Catalog.for_settings(settings)), spy  # type: ignore[arg-type]


def stored_ids(settings: Settings) -> list[str]:
    return build_chunk_store(settings).collection.get(include=[])["ids"]


def test_files_are_embedded_together_and_fail_alone(
    tmp_path: Path, embedder: Embedder, corpus: Path
) -> None:
    batched = settings_for(tmp_path / "together")
    together, spy = build(batched, embedder)
    report = together.ingest([corpus])
    alone = settings_for(tmp_path / "single", APPLIANCE__INGEST__EMBED_BATCH_CHUNKS="1")
    one_at_a_time, single = build(alone, embedder)
    expected = one_at_a_time.ingest([corpus])

    assert len(spy.sizes) == 1 and len(single.sizes) == 5
    assert sum(spy.sizes) == sum(single.sizes) == report.chunks_written
    by_name = {Path(o.path).name: o for o in report.outcomes}
    broken = by_name["broken.pdf"]
    assert broken.status == "failed" and "not a valid PDF" in (broken.error or "")
    for outcome in expected.outcomes:
        mine = by_name[Path(outcome.path).name]
        assert (mine.status, mine.chunks, mine.version) == (
            outcome.status, outcome.chunks, outcome.version
        )  # fmt: skip
    assert sorted(stored_ids(batched)) == sorted(stored_ids(alone))


def test_a_job_claims_each_file_in_turn_and_a_retried_file_goes_alone(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    service, spy = build(settings, embedder)
    jobs = JobStore.for_settings(settings)
    files = sorted(path for path in corpus.iterdir() if path.suffix != ".pdf")
    job_id = jobs.create("paths", [JobItem(str(path)) for path in files], None, "test")
    # File 2 was in progress when its worker died: this is its second attempt.
    jobs.start(job_id, 2, "dead-worker")

    run_job_files(jobs, service, job_id, [0, 1, 2, 3], "w1", max_attempts=3)

    job = jobs.get(job_id)
    assert [item.status for item in job.files] == ["indexed"] * 4
    assert [item.attempts for item in job.files] == [1, 1, 2, 1]
    # Files 0 and 1 together, then file 2 alone (the batch before it written first), then 3.
    assert spy.sizes == [
        job.files[0].chunks + job.files[1].chunks,
        job.files[2].chunks,
        job.files[3].chunks,
    ]
    store = build_chunk_store(settings)
    for item in job.files:
        assert len(store.chunk_ids(item.doc_id)) == item.chunks


def test_a_task_delivered_twice_still_reports_what_this_job_indexed(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    # Redis hands a task to a second worker when the first holds it past the visibility
    # timeout, so both run the same files. The second finds the catalog already written by the
    # first: for this job those files were indexed, not unchanged, whoever records last.
    service, _ = build(settings, embedder)
    jobs = JobStore.for_settings(settings)
    older = service.ingest([corpus / "onboarding.md"]).outcomes[0]  # an earlier job's work
    files = [corpus / "onboarding.md", corpus / "vpn-policy.txt", corpus / "deploy-runbook.html"]
    job_id = jobs.create("paths", [JobItem(str(path)) for path in files], None, "test")
    for n in range(3):
        jobs.start(job_id, n, "slow-worker")  # the first delivery claims them ...
    written = service.ingest(files[1:]).outcomes  # ... and writes two before it records them

    run_job_files(jobs, service, job_id, [0, 1, 2], "w2", max_attempts=3)
    by_second = jobs.get(job_id)
    for n, outcome in enumerate(written, start=1):  # the first delivery records too
        jobs.finish(job_id, n, outcome.status, outcome.chunks, None, outcome.doc_id)

    expected = [("unchanged", 0)] + [("indexed", outcome.chunks) for outcome in written]
    for job in (by_second, jobs.get(job_id)):  # the second recorded last, then the first
        assert [(item.status, item.chunks) for item in job.files] == expected
        assert build_chunk_store(settings).count() == older.chunks + job.chunks_written
    assert all(outcome.chunks > 0 for outcome in [older, *written])


def chunks_of(doc_id: str, version: str, count: int) -> list[Chunk]:
    return [
        Chunk(
            doc_id=doc_id,
            version=version,
            n=n,
            text=f"{doc_id} {version} {n}",
            path="/x",
            groups=("everyone",),
        )
        for n in range(count)
    ]


def test_old_versions_go_and_nothing_else(settings: Settings) -> None:
    store = build_chunk_store(settings)
    everything = (
        chunks_of("aaa", "v1", 3) + chunks_of("aaa", "v2", 2) + chunks_of("bbb", "v1", 2)
    ) + chunks_of("ccc", "v1", 2)
    store.upsert(everything, [[1.0, float(n)] for n in range(len(everything))])
    before = store.generation()

    assert store.delete_other_versions({"aaa": "v2", "bbb": "v1"}) == 3
    assert sorted(stored_ids(settings)) == sorted(
        ["aaa:v2:0", "aaa:v2:1", "bbb:v1:0", "bbb:v1:1", "ccc:v1:0", "ccc:v1:1"]
    )
    assert store.generation() != before  # a node's lexical index sees the change
    unchanged = store.generation()
    assert store.delete_other_versions({"bbb": "v1", "new": "v1"}) == 0
    assert store.generation() == unchanged


def test_deleting_a_document_removes_all_its_chunks_and_only_them(settings: Settings) -> None:
    store: ChromaChunkStore = build_chunk_store(settings)
    big = chunks_of("big", "v1", 5_500)  # more than one Chroma delete batch (5,461)
    others = chunks_of("other", "v1", 3)
    store.upsert(big + others, [[1.0, float(n % 7)] for n in range(len(big) + len(others))])

    store.delete_document("big")

    assert store.chunk_ids("big") == []
    assert sorted(stored_ids(settings)) == ["other:v1:0", "other:v1:1", "other:v1:2"]


def test_a_purge_cut_short_stays_hidden_until_done_again_or_written_anew(
    settings: Settings,
) -> None:
    store: ChromaChunkStore = build_chunk_store(settings)
    store.upsert(chunks_of("doc", "v1", 3), [[1.0, float(n)] for n in range(3)])

    def crash(ids: object) -> None:
        raise RuntimeError("the worker died mid-purge")

    purge, store._delete_ids = store._delete_ids, crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        store.delete_document("doc")
    assert store.hidden() == {"doc"} and len(store.chunk_ids("doc")) == 3
    assert store.document_chunks("doc") == []
    store._delete_ids = purge  # type: ignore[method-assign]

    store.delete_document("doc")  # the delete, delivered again
    assert store.hidden() == frozenset() and store.chunk_ids("doc") == []
    with pytest.raises(RuntimeError):
        store._delete_ids = crash  # type: ignore[method-assign]
        store.upsert(chunks_of("doc", "v2", 2), [[1.0, float(n)] for n in range(2)])
        store.delete_document("doc")
    store.upsert(chunks_of("doc", "v2", 2), [[1.0, float(n)] for n in range(2)])
    assert store.hidden() == frozenset() and len(store.document_chunks("doc")) == 2
