"""Chunk texts and sources live beside Chroma (the catalog's database); real Chroma, embedder."""

from __future__ import annotations

from typing import Any

from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict

from appliance.auth.principal import Principal
from appliance.components.embedding import Embedder
from appliance.components.vector_store import build_chunk_store
from appliance.components.vector_store.chunk_records import ChunkRecords
from appliance.domain import Chunk
from appliance.retrieval.dense import DenseRetriever
from appliance.retrieval.lexical import LexicalIndex
from appliance.settings import Settings

READER = Principal.local("test")


def chunks(doc_id: str, version: str, *texts: str) -> list[Chunk]:
    return [
        Chunk(doc_id, version, n, text, f"/srv/{doc_id}.txt", page=n + 1, section="Facilities",
              file_type="txt", groups=("everyone",))
        for n, text in enumerate(texts)
    ]  # fmt: skip


def write(settings: Settings, embedder: Embedder, written: list[Chunk]) -> None:
    vectors = embedder.embed_documents([chunk.text for chunk in written])
    build_chunk_store(settings).upsert(written, vectors)


def metadata_before_records(chunk: Chunk) -> dict[str, Any]:
    """Chroma metadata as the appliance wrote it before chunk records: llama-index's flat node."""
    metadata = {
        "doc_id": chunk.doc_id,
        "version": chunk.version,
        "chunk_index": chunk.n,
        "path": chunk.path,
        "file_type": chunk.file_type,
        "collection": chunk.collection,
        "page": chunk.page,
        "section": chunk.section,
    }
    node = TextNode(id_=chunk.chunk_id, text=chunk.text, metadata=metadata)
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=chunk.doc_id)
    flat = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)
    return flat | {"groups": list(chunk.groups)}


def test_chroma_holds_vectors_and_filter_fields_and_every_reader_gets_the_rest(
    settings: Settings, embedder: Embedder
) -> None:
    written = chunks("a", "v1", "The badge office opens at 7:30.", "Parking is on level -2.")
    write(settings, embedder, written)
    store = build_chunk_store(settings)
    stored = store.collection.get(include=["documents", "metadatas"])
    assert stored["documents"] == [None, None]
    assert stored["metadatas"][0] == {"doc_id": "a", "collection": "", "groups": ["everyone"]}
    records = ChunkRecords.for_settings(settings).of_document("a")
    assert {chunk_id: record.text for chunk_id, record in records.items()} == {
        chunk.chunk_id: chunk.text for chunk in written
    }
    dense_retriever = DenseRetriever(store, embedder)
    (dense,) = dense_retriever.retrieve("When does the badge office open?", 1, READER)
    assert (dense.text, dense.doc_id, dense.version, dense.path, dense.page, dense.section) == (
        "The badge office opens at 7:30.", "a", "v1", "/srv/a.txt", 1, "Facilities"
    )  # fmt: skip
    ((lexical, _),) = LexicalIndex(store).search("parking level", 1, READER, None)
    assert (lexical.text, lexical.doc_id, lexical.page) == ("Parking is on level -2.", "a", 2)
    in_context = store.document_chunks("a")
    assert [(c["n"], c["page"], c["text"]) for c in in_context] == [
        (0, 1, "The badge office opens at 7:30."),
        (1, 2, "Parking is on level -2."),
    ]


def test_a_collection_written_before_chunk_records_still_reads_and_deletes(
    settings: Settings, embedder: Embedder
) -> None:
    """An index from before: texts in Chroma's documents, every field in its metadata."""
    (old,) = chunks("old", "v1", "Expense reports are due on the 5th.")
    store = build_chunk_store(settings)
    store.collection.upsert(
        ids=[old.chunk_id],
        embeddings=embedder.embed_documents([old.text]),
        documents=[old.text],
        metadatas=[metadata_before_records(old)],
    )
    write(settings, embedder, chunks("new", "v1", "Travel must be booked through the portal."))
    store = build_chunk_store(settings)
    _, texts, metadatas = store.all_chunks()
    assert sorted(texts) == [
        "Expense reports are due on the 5th.",
        "Travel must be booked through the portal.",
    ]
    assert sorted(m["path"] for m in metadatas) == ["/srv/new.txt", "/srv/old.txt"]
    (hit,) = DenseRetriever(store, embedder).retrieve("When are expense reports due?", 1, READER)
    assert (hit.text, hit.doc_id, hit.path, hit.page) == (old.text, "old", "/srv/old.txt", 1)
    assert store.document_chunks("old")[0]["text"] == "Expense reports are due on the 5th."
    store.delete_document("old")
    assert store.chunk_ids("old") == [] and store.count() == 1


def test_delete_and_new_versions_leave_no_record_behind(
    settings: Settings, embedder: Embedder
) -> None:
    records = ChunkRecords.for_settings(settings)
    write(settings, embedder, chunks("a", "v1", "first draft", "second paragraph"))
    # A write of v2 that died after its records were stored and before Chroma had them.
    records.put(chunks("a", "v2", "orphan of a failed write"))
    write(settings, embedder, chunks("a", "v3", "final text"))
    store = build_chunk_store(settings)
    assert store.delete_other_versions({"a": "v3"}) == 2
    assert list(records.of_document("a")) == ["a:v3:0"]
    write(settings, embedder, chunks("b", "v1", "kept"))
    store.delete_document("a")
    assert list(records.all()) == ["b:v1:0"]
    assert store.all_chunks()[1] == ["kept"]


def test_records_are_found_across_statements(settings: Settings) -> None:
    """More ids than one SQL statement binds (SQLite's oldest limit is 999)."""
    records = ChunkRecords.for_settings(settings)
    many = chunks("big", "v1", *(f"passage {n}" for n in range(2500)))
    records.put(many)
    found = records.get([chunk.chunk_id for chunk in many] + ["big:v1:missing"])
    assert len(found) == 2500 and found["big:v1:2499"].text == "passage 2499"
