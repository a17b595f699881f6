"""Chunks in a Chroma collection (embedded folder or `chroma run`), in a shape llama-index reads."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
from chromadb.config import Settings as ChromaClientSettings
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict
from llama_index.vector_stores.chroma import ChromaVectorStore

from appliance.domain import Chunk
from appliance.errors import VectorStoreUnavailable

# Chroma's product telemetry would phone home: the appliance never lets it.
_CLIENT_SETTINGS = ChromaClientSettings(anonymized_telemetry=False, allow_reset=False)
# Chroma caps one write; stay well under it so big documents go in several calls.
_WRITE_BATCH = 1000
# State records beside the chunks: the generation token, and one per document being purged.
_GENERATION = "generation"
_HIDDEN = "hidden:"


def embedded_client(path: Path) -> chromadb.ClientAPI:
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=_CLIENT_SETTINGS)


def server_client(host: str, port: int) -> chromadb.ClientAPI:
    try:
        return chromadb.HttpClient(host=host, port=port, settings=_CLIENT_SETTINGS)
    except Exception as error:  # the client checks the server at construction
        raise VectorStoreUnavailable(
            f"the Chroma server at {host}:{port} does not answer; is `chroma run` started?"
        ) from error


def chunk_metadata(chunk: Chunk) -> dict[str, Any]:
    """Flat metadata in the shape llama-index's ChromaVectorStore reads back into a node."""
    metadata: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "version": chunk.version,
        "chunk_index": chunk.n,
        "path": chunk.path,
        "file_type": chunk.file_type,
        "collection": chunk.collection,
    }
    # Chroma metadata cannot hold None: an absent page or section is an absent key.
    if chunk.page is not None:
        metadata["page"] = chunk.page
    if chunk.section:
        metadata["section"] = chunk.section
    node = TextNode(id_=chunk.chunk_id, text=chunk.text, metadata=metadata)
    # llama-index writes the node's source document id over "doc_id" (and "ref_doc_id"), so the
    # document must be the node's SOURCE, or every chunk would read doc_id "None".
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=chunk.doc_id)
    node.excluded_embed_metadata_keys = list(metadata)
    node.excluded_llm_metadata_keys = list(metadata)
    flat = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)
    # Chroma filters a list with $contains, so the groups go in after llama-index's flat check.
    flat["groups"] = list(chunk.groups)
    return flat


@dataclass(frozen=True)
class StoreState:
    """What every node reads before it searches: whether its lexical index is stale, and the
    documents no search may return (being purged)."""

    generation: str
    hidden: frozenset[str]


class ChromaChunkStore:
    def __init__(self, client: chromadb.ClientAPI, collection: str) -> None:
        self._client = client
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

    def all_chunks(self) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Every chunk's id, text and metadata: what the lexical index is built from."""
        found = self._collection.get(include=["documents", "metadatas"])
        return found["ids"], list(found["documents"] or []), list(found["metadatas"] or [])

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
        for start in range(0, len(chunks), _WRITE_BATCH):
            batch = chunks[start : start + _WRITE_BATCH]
            self._collection.upsert(
                ids=[chunk.chunk_id for chunk in batch],
                embeddings=[list(vector) for vector in embeddings[start : start + _WRITE_BATCH]],
                documents=[chunk.text for chunk in batch],
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
        chunks = [
            {
                "chunk_id": chunk_id,
                "n": metadata.get("chunk_index"),
                "page": metadata.get("page"),
                "section": metadata.get("section"),
                "text": text,
            }
            for chunk_id, text, metadata in zip(
                found["ids"], found["documents"] or [], found["metadatas"] or [], strict=True
            )
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

        The purge of a big document takes seconds (Chroma's full-text index of the texts is
        half of it, bench/chroma_delete.py); hidden first, no reader sees it at all, rather
        than part of it, meanwhile. A purge cut short by a crash leaves it hidden until the
        delete is done again (its task is delivered again) or the document is written anew.
        """
        marker = _HIDDEN + doc_id
        self._state.upsert(ids=[marker], embeddings=[[0.0]], metadatas=[{"doc_id": doc_id}])
        self._changed()
        self._delete_ids(self.chunk_ids(doc_id))
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
        return len(stale)

    def heartbeat(self) -> None:
        self._client.heartbeat()
