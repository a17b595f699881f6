"""Dense retrieval through llama-index over the Chroma collection, with our own embedder."""

from __future__ import annotations

import math
from typing import Any

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from appliance.auth.access import search_filter
from appliance.auth.principal import Principal
from appliance.components.embedding import Embedder
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.domain import Hit


class _EmbedderAdapter(BaseEmbedding):
    """Lets llama-index use the very embedder ingestion used, so queries and chunks match."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(model_name=embedder.name)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def cosine_from_llama_index_score(score: float | None) -> float:
    # ChromaVectorStore reports exp(-distance); with cosine space, distance = 1 - cosine.
    return 1.0 + math.log(score) if score else 0.0


class DenseRetriever:
    def __init__(self, store: ChromaChunkStore, embedder: Embedder) -> None:
        self._store = store
        self._index = VectorStoreIndex.from_vector_store(
            store.as_llama_index(), embed_model=_EmbedderAdapter(embedder)
        )

    def retrieve(
        self,
        question: str,
        top_k: int,
        principal: Principal,
        collections: list[str] | None = None,
        hidden: frozenset[str] | None = None,
    ) -> list[Hit]:
        # The filter goes into Chroma's own query, so the k results are k readable ones.
        # `hidden`: the documents being purged, when the caller has read the store's state.
        hidden = self._store.hidden() if hidden is None else hidden
        where = search_filter(principal, collections, hidden)
        kwargs = {"vector_store_kwargs": {"where": where}} if where else {}
        retriever = self._index.as_retriever(similarity_top_k=top_k, **kwargs)
        results = retriever.retrieve(question)
        # Chroma gives the ids and filter fields; text and source come from the chunks' records.
        ids = [result.node.node_id for result in results]
        texts, metadatas = self._store.complete(
            ids,
            [result.node.metadata for result in results],
            [result.node.get_content() or None for result in results],
        )
        hits = [
            Hit.found(chunk_id, text, metadata, round(cosine_from_llama_index_score(r.score), 4))
            for chunk_id, text, metadata, r in zip(ids, texts, metadatas, results, strict=True)
        ]
        return sorted(hits, key=lambda hit: hit.score, reverse=True)
