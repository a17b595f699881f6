"""The chunk store (vector index), chosen by `vector_store.mode`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.components.vector_store.chroma import ChromaChunkStore
    from appliance.settings import Settings


def build_chunk_store(settings: Settings) -> ChromaChunkStore:
    from appliance.components.vector_store import chroma
    from appliance.components.vector_store.chunk_records import ChunkRecords

    match settings.vector_store.mode:
        case "chroma_embedded":
            client = chroma.embedded_client(settings.chroma_dir)
        case "chroma_server":
            client = chroma.server_client(settings.vector_store.host, settings.vector_store.port)
        case other:
            raise ValueError(f"unknown vector_store mode {other!r}")
    return chroma.ChromaChunkStore(
        client, settings.vector_store.collection, ChunkRecords.for_settings(settings)
    )
