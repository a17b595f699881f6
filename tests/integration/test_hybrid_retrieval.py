"""BM25 and hybrid retrieval: kept in step with ingestion and deletion, and filtered by groups
inside the search like the dense one."""

from __future__ import annotations

from pathlib import Path

from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.retrieval import build_retriever
from appliance.retrieval.hybrid import reciprocal_rank_fusion
from appliance.settings import Settings
from appliance.settings.settings import RetrievalSettings
from ingest.catalog import Catalog
from ingest.service import IngestService
from tests.access import (
    ENG_MARKER,
    ENG_TEXTS,
    HR_MARKER,
    ingest_departments,
    with_department_access,
    write_corpus,
)

ENG_READER = Principal("alice", "reader", frozenset({"eng"}))
HR_READER = Principal("bob", "reader", frozenset({"hr"}))


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d", "a"]], k=60)
    assert fused[:2] == ["a", "c"]  # in both lists
    assert set(fused) == {"a", "b", "c", "d"}


def _world(tmp_path: Path, settings: Settings, embedder) -> tuple[Components, Path, Path]:
    hr, eng = write_corpus(tmp_path / "docs")
    settings = with_department_access(settings, hr, eng)
    components = Components(settings)
    components.embedder = embedder
    ingest_departments(components, hr, eng)
    return components, hr, eng


def _retriever(components: Components, mode: str):
    return build_retriever(
        RetrievalSettings(mode=mode), components.chunk_store, components.embedder
    )


def test_bm25_finds_exact_identifiers_and_applies_groups_inside(
    tmp_path: Path, settings: Settings, embedder
) -> None:
    components, _, _ = _world(tmp_path, settings, embedder)
    bm25 = _retriever(components, "bm25")
    own = bm25.retrieve(HR_MARKER, 3, HR_READER)
    assert HR_MARKER in own[0].text and own[0].score > 0  # a real cosine, not 0
    assert bm25.retrieve(HR_MARKER, 3, ENG_READER) == []  # the only match is not readable
    for mode in ("bm25", "hybrid", "dense"):
        hits = _retriever(components, mode).retrieve(
            "confidential salary band code engineers level 7", 10, ENG_READER
        )
        assert all(hit.collection == "eng" for hit in hits), mode
    # Hybrid still fills top-k from what the reader may read.
    assert len(
        _retriever(components, "hybrid").retrieve("salary", len(ENG_TEXTS), ENG_READER)
    ) == len(ENG_TEXTS)
    hybrid = _retriever(components, "hybrid").retrieve(ENG_MARKER, 1, ENG_READER)
    assert ENG_MARKER in hybrid[0].text


def test_the_lexical_index_follows_ingestion_and_deletion(
    tmp_path: Path, settings: Settings, embedder
) -> None:
    components, _, eng = _world(tmp_path, settings, embedder)
    bm25 = _retriever(components, "bm25")
    assert bm25.retrieve("ZEPPELIN", 3, ENG_READER) == []
    # Not named after either word: a document's title (its file name here) is searched too.
    note = eng / "staging-note.txt"
    note.write_text("The staging cluster is nicknamed ZEPPELIN by the platform team.\n")
    service = IngestService.for_components(components)
    service.ingest([note])
    assert "ZEPPELIN" in bm25.retrieve("ZEPPELIN", 3, ENG_READER)[0].text
    note.write_text("The staging cluster is nicknamed BLIMP by the platform team.\n")
    service.ingest([note])
    assert bm25.retrieve("ZEPPELIN", 3, ENG_READER) == []
    assert "BLIMP" in bm25.retrieve("BLIMP", 3, ENG_READER)[0].text
    service.delete(str(note))
    assert bm25.retrieve("BLIMP", 3, ENG_READER) == []


def test_a_document_being_purged_is_in_no_search_and_top_k_stays_full(
    tmp_path: Path, settings: Settings, embedder
) -> None:
    components, _, eng = _world(tmp_path, settings, embedder)
    store = components.chunk_store
    doomed = eng / "eng-0.txt"  # the only text with ENG_MARKER
    service = IngestService.for_components(components)
    doc_id = Catalog.for_settings(components.settings).find_by_path(str(doomed.resolve())).doc_id
    retrievers = {mode: _retriever(components, mode) for mode in ("dense", "bm25", "hybrid")}
    for mode in ("bm25", "hybrid"):
        assert retrievers[mode].retrieve(ENG_MARKER, 1, ENG_READER)[0].doc_id == doc_id
    seen_mid_purge: dict[str, list[str]] = {}
    purge = store._delete_ids

    def searched_first(ids: list[str]) -> None:
        # The chunks are all still in Chroma here: only the hiding keeps them out.
        assert len(store.chunk_ids(doc_id)) == len(ids) > 0
        for mode, retriever in retrievers.items():
            hits = retriever.retrieve(f"{ENG_MARKER} build cache", len(ENG_TEXTS) - 1, ENG_READER)
            seen_mid_purge[mode] = [hit.doc_id for hit in hits]
        seen_mid_purge["context"] = [c["chunk_id"] for c in store.document_chunks(doc_id)]
        purge(ids)

    store._delete_ids = searched_first  # type: ignore[method-assign]
    service.delete(str(doomed))

    assert seen_mid_purge["context"] == []
    for mode in ("dense", "bm25", "hybrid"):
        assert doc_id not in seen_mid_purge[mode], mode
    # The other eng documents still fill k (bm25 finds only those sharing a word).
    assert len(seen_mid_purge["dense"]) == len(seen_mid_purge["hybrid"]) == len(ENG_TEXTS) - 1
    assert store.chunk_ids(doc_id) == [] and store.hidden() == frozenset()
    after = retrievers["hybrid"].retrieve(ENG_MARKER, 3, ENG_READER)
    assert after and all(hit.doc_id != doc_id for hit in after)
