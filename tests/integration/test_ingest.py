"""Ingestion into a real Chroma with the real embedder and parsers (no LLM needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance.auth.principal import Principal
from appliance.components.embedding import Embedder
from appliance.components.vector_store import build_chunk_store
from appliance.errors import DocumentNotFound
from appliance.retrieval.dense import DenseRetriever
from appliance.settings import Settings
from ingest.catalog import Catalog
from ingest.service import IngestService
from tests.conftest import CORPUS


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    return folder


@pytest.fixture
def service(settings: Settings, embedder: Embedder) -> IngestService:
    store = build_chunk_store(settings)
    return IngestService(settings, embedder, store, Catalog.for_settings(settings))


def all_ids(settings: Settings) -> set[str]:
    return set(build_chunk_store(settings).collection.get(include=[])["ids"])


def test_corpus_ingests_and_the_right_file_ranks_first(
    service: IngestService, settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    report = service.ingest([corpus])
    assert report.count("indexed") == 5 and report.count("failed") == 0
    ids = all_ids(settings)
    assert len(ids) == report.chunks_written
    hits = DenseRetriever(build_chunk_store(settings), embedder).retrieve(
        "Which telephone extension is the incident bridge on?", 3, Principal.local("test")
    )
    assert Path(hits[0].path).name == "incident-response.pdf"
    assert hits[0].page == 2
    assert hits[0].score >= hits[-1].score


def test_reingesting_unchanged_files_writes_nothing(
    service: IngestService, settings: Settings, corpus: Path
) -> None:
    service.ingest([corpus])
    store = build_chunk_store(settings)
    before = store.all_chunks()
    second = service.ingest([corpus])
    assert second.count("unchanged") == 5 and second.chunks_written == 0
    assert store.all_chunks() == before


def test_changed_file_replaces_all_its_old_chunks(
    service: IngestService, settings: Settings, corpus: Path
) -> None:
    service.ingest([corpus])
    runbook = corpus / "vpn-policy.txt"
    doc_id = service.ingest([runbook]).outcomes[0].doc_id
    old_ids = set(build_chunk_store(settings).chunk_ids(doc_id))
    runbook.write_text("VPN policy\n\nA VPN session now expires after 9 hours.\n")
    outcome = service.ingest([runbook]).outcomes[0]
    assert outcome.status == "indexed"
    new_ids = set(build_chunk_store(settings).chunk_ids(doc_id))
    assert new_ids and not new_ids & old_ids
    texts = [chunk["text"] for chunk in build_chunk_store(settings).document_chunks(doc_id)]
    assert any("9 hours" in text for text in texts)
    assert all("11 hours" not in text for text in texts)
    # Nothing of the old version is left beside Chroma either (what BM25 is built from).
    _, every_text, _ = build_chunk_store(settings).all_chunks()
    assert not any("11 hours" in text for text in every_text)


def test_delete_removes_every_chunk_of_the_document(
    service: IngestService, settings: Settings, corpus: Path
) -> None:
    service.ingest([corpus])
    pdf = corpus / "incident-response.pdf"
    total = len(all_ids(settings))
    doc_id = service.delete(str(pdf))
    store = build_chunk_store(settings)
    assert store.chunk_ids(doc_id) == []
    assert len(all_ids(settings)) < total
    with pytest.raises(DocumentNotFound):
        service.delete(str(pdf))


def test_a_broken_file_fails_alone_with_a_clear_message(
    service: IngestService, settings: Settings, corpus: Path
) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    (corpus / "empty.md").write_text("")
    report = service.ingest([corpus])
    failed = {Path(o.path).name: o.error for o in report.outcomes if o.status == "failed"}
    assert set(failed) == {"broken.pdf", "empty.md"}
    assert "broken.pdf is not a valid PDF" in failed["broken.pdf"]
    assert "is empty" in failed["empty.md"]
    assert report.count("indexed") == 5
    statuses = {Path(r.path).name: r.status for r in Catalog.for_settings(settings).list()}
    assert statuses["broken.pdf"] == "failed" and statuses["onboarding.md"] == "indexed"
