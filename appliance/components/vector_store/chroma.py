"""Chunks in a Chroma collection (embedded folder or `chroma run`), searched through llama-index.

Chroma holds each chunk's vector and the fields its filters read; the chunk's text and source
are a `ChunkRecords` row (chunk_records.py says why). A collection written before that keeps
its texts in Chroma's `documents` and its fields in Chroma's metadata: where ChunkRecords has
no row for a chunk, they are read from there, so an upgraded index answers as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
from chromadb.config import Settings as ChromaClientSettings
from llama_index.vector_stores.chroma import ChromaVectorStore

from appliance.components.vector_store.chunk_records import ChunkRecord, ChunkRecords
from appliance.domain import Chunk
from appliance.errors import VectorStoreUnavailable
from appliance.private_dirs import make_private_dirs

# Chroma's product telemetry would phone home: the appliance never lets it.
_CLIENT_SETTINGS = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
# Chroma caps one write; stay well under it so big documents go in several calls.
_WRITE_BATCH = 1000
# State records beside the chunks: the generation token, and one per document being purged.
_GENERATION = "generation"
_HIDDEN = "hidden:"


def embedded_client(path: Path) -> chromadb.ClientAPI:
    make_private_dirs(path)
    return chromadb.PersistentClient(path=str(path), settings=_CLIENT_SETTINGS)


def server_client(host: str, port: int) -> chromadb.ClientAPI:
    try:
        return chromadb.HttpClient(host=host, port=port, settings=_CLIENT_SETTINGS)
    except Exception as error:  # the client checks the server at construction
        raise VectorStoreUnavailable(
            f"the Chroma server at {host}:{port} does not answer; is `chroma run` started?"
        ) from error


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """What Chroma keeps of a chunk beside its vector: the fields its filters read (the access
    filter and the hidden documents'). The rest is in ChunkRecords (chunk_records.py says why)."""
    # Chroma filters a list with $contains.
    return {"doc_id": chunk.doc_id, "collection": chunk.collection, "groups": list(chunk.groups)}


@dataclass(frozen=True)
class StoreState:
    """What every node reads before it searches: whether its lexical index is stale, and the
    documents no search may return (being purged)."""

    generation: str
    hidden: frozenset[str]


class ChromaChunkStore:
    def __init__(self, client: chromadb.ClientAPI, collection: str, records: ChunkRecords) -> None:
        self._client = client
        self._records = records
        # Cosine distance, so 1 - distance is the cosine similarity shown to users.
        self._collection = client.get_or_create_collection(
            collection, metadata={"hnsw:space": "cosine"}
        )
        # One record whose token changes with every write, so a node's lexical index can tell it
        # is stale (Chroma will not modify a collection's own metadata once its space is set).
        self._state = client.get_or_create_collection(f"{collection}-state")

    def _changed(self) -> None:
        self._state.upsert(
            ids=[_GENERATION], embeddings=[[0.0]], metadatas=[{"token": uuid.uuid4().hex}]
        )

    def state(self) -> StoreState:
        """One read of the few state records (the generation and the hidden documents)."""
        found = self._state.get(include=["metadatas"])
        generation = ""
        hidden = []
        for record_id, metadata in zip(found["ids"], found["metadatas"] or [], strict=True):
            if record_id == _GENERATION:
                generation = str(metadata["token"])
            elif record_id.startswith(_HIDDEN):
                hidden.append(record_id.removeprefix(_HIDDEN))
        return StoreState(generation, frozenset(hidden))

    def generation(self) -> str:
        return self.state().generation

    def hidden(self) -> frozenset[str]:
        return self.state().hidden

    @staticmethod
    def _complete(
        ids: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
        documents: Sequence[str | None] | None,
        records: Mapping[str, ChunkRecord],
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """These chunks' texts and full metadata, in order, from their records; for a chunk
        with none (written before records), from what Chroma holds of it."""
        documents = documents or [None] * len(ids)
        texts, full = [], []
        for chunk_id, metadata, document in zip(ids, metadatas, documents, strict=True):
            record = records.get(chunk_id)
            texts.append(record.text if record else document or "")
            full.append({**metadata, **record.metadata()} if record else dict(metadata))
        return texts, full

    def complete(
        self,
        ids: Sequence[str],
        metadatas: Sequence[Mapping[str, Any]],
        documents: Sequence[str | None] | None = None,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Texts and full metadata of chunks a search found in Chroma (ids, their metadata and
        any text Chroma returned with them)."""
        return self._complete(ids, metadatas, documents, self._records.get(ids))

    def all_chunks(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Every chunk's id, text and metadata: what the lexical index is built from."""
        found = self._collection.get(include=["documents", "metadatas"])
        ids = found["ids"]
        metadatas = found["metadatas"] or []
        texts, full = self._complete(ids, metadatas, found["documents"], self._records.all())
        return ids, texts, full

    def embeddings(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        if not chunk_ids:
            return {}
        found = self._collection.get(ids=list(chunk_ids), include=["embeddings"])
        vectors = found["embeddings"] if found["embeddings"] is not None else []
        return {
            chunk_id: list(vector) for chunk_id, vector in zip(found["ids"], vectors, strict=True)
        }

    @property
    def collection(self) -> chromadb.Collection:
        return self._collection

    def as_llama_index(self) -> ChromaVectorStore:
        return ChromaVectorStore(chroma_collection=self._collection)

    def count(self) -> int:
        return self._collection.count()

    def upsert(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        # Records first: any chunk a search can find in Chroma has its text.
        self._records.put(chunks)
        for start in range(0, len(chunks), _WRITE_BATCH):
            batch = chunks[start : start + _WRITE_BATCH]
            self._collection.upsert(
                ids=[chunk.chunk_id for chunk in batch],
                embeddings=[list(vector) for vector in embeddings[start : start + _WRITE_BATCH]],
                metadatas=[chunk_metadata(chunk) for chunk in batch],
            )
        # A document written again is visible again, even if a purge of it never finished.
        self._state.delete(ids=sorted({_HIDDEN + chunk.doc_id for chunk in chunks}))
        self._changed()

    def chunk_ids(self, doc_id: str) -> list[str]:
        return self._collection.get(where={"doc_id": doc_id}, include=[])["ids"]

    def document_chunks(self, doc_id: str) -> list[dict[str, Any]]:
        """A document's indexed passages in order, for showing a citation in its context."""
        if doc_id in self.hidden():
            return []
        found = self._collection.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        records = self._records.of_document(doc_id)
        texts, metadatas = self._complete(
            found["ids"], found["metadatas"] or [], found["documents"], records
        )
        chunks = [
            {
                "chunk_id": chunk_id,
                "n": metadata.get("chunk_index"),
                "page": metadata.get("page"),
                "section": metadata.get("section"),
                "text": text,
                # Who may read this chunk: a new version's chunks carry its (maybe narrower)
                # groups before the catalog does (see the /chunks endpoint).
                "groups": list(metadata.get("groups") or ()),
            }
            for chunk_id, text, metadata in zip(found["ids"], texts, metadatas, strict=True)
        ]
        return sorted(chunks, key=lambda chunk: chunk["n"] or 0)

    def _delete_ids(self, ids: Sequence[str]) -> None:
        # By id, not by a `where` filter: Chroma then skips its metadata scan, which measured
        # about half of deleting a big document (bench/ingest.py).
        size = self._client.get_max_batch_size()
        for start in range(0, len(ids), size):
            self._collection.delete(ids=list(ids[start : start + size]))

    def delete_document(self, doc_id: str) -> None:
        """Hides the document from every search at once, then purges its chunks.

        The purge of a big document takes about a second (Chroma's rows of its 10,890
        chunks, bench/ingest.py); hidden first, no reader sees it at all, rather than part of
        it, meanwhile. A purge cut short by a crash leaves it hidden until the
        delete is done again (its task is delivered again) or the document is written anew.
        """
        marker = _HIDDEN + doc_id
        self._state.upsert(ids=[marker], embeddings=[[0.0]], metadatas=[{"doc_id": doc_id}])
        self._changed()
        self._delete_ids(self.chunk_ids(doc_id))
        self._records.delete_document(doc_id)
        self._state.delete(ids=[marker])
        self._changed()

    def delete_other_versions(self, keep: Mapping[str, str]) -> int:
        """Removes every chunk of these documents (doc_id -> version) of another version.

        One read for all of them, by id alone (an id is `doc_id:version:n`), and deletes only
        where something is stale: a new document costs no delete. Returns how many went.
        """
        if not keep:
            return 0
        found = self._collection.get(where={"doc_id": {"$in": list(keep)}}, include=[])
        stale = [
            chunk_id
            for chunk_id in found["ids"]
            if (parts := chunk_id.split(":"))[0] in keep and parts[1] != keep[parts[0]]
        ]
        if stale:
            self._delete_ids(stale)
            self._changed()
        self._records.delete_other_versions(keep)
        return len(stale)

    def heartbeat(self) -> None:
        self._client.heartbeat()
