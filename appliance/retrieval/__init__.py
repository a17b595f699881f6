"""Retrievers, chosen by `retrieval.mode`: dense (Chroma), bm25, or hybrid (both, fused)."""

from __future__ import annotations

from typing import Protocol

from appliance.auth.principal import Principal
from appliance.components.embedding import Embedder
from appliance.components.reranker import Reranker, build_reranker
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.domain import Hit
from appliance.settings.settings import RetrievalSettings


class Retriever(Protocol):
    def retrieve(
        self, question: str, top_k: int, principal: Principal, collections: list[str] | None = None
    ) -> list[Hit]: ...


class RerankedRetriever:
    """The inner retriever's best candidates, reordered by a local reranker."""

    def __init__(self, inner: Retriever, reranker: Reranker, candidates: int) -> None:
        self._inner = inner
        self._reranker = reranker
        self._candidates = candidates

    def retrieve(
        self, question: str, top_k: int, principal: Principal, collections: list[str] | None = None
    ) -> list[Hit]:
        # The access filter applied inside the inner search: the reranker only sees readable hits.
        found = self._inner.retrieve(question, max(self._candidates, top_k), principal, collections)
        return self._reranker.rerank(question, found, top_k)


def build_retriever(
    settings: RetrievalSettings, store: ChromaChunkStore, embedder: Embedder
) -> Retriever:
    retriever = _first_stage(settings, store, embedder)
    reranker = build_reranker(settings)
    if reranker is None:
        return retriever
    return RerankedRetriever(retriever, reranker, settings.rerank_candidates)


def _first_stage(
    settings: RetrievalSettings, store: ChromaChunkStore, embedder: Embedder
) -> Retriever:
    from appliance.retrieval.dense import DenseRetriever

    match settings.mode:
        case "dense":
            return DenseRetriever(store, embedder)
        case "bm25":
            from appliance.retrieval.hybrid import BM25Retriever
            from appliance.retrieval.lexical import LexicalIndex

            return BM25Retriever(LexicalIndex(store), store, embedder)
        case "hybrid":
            from appliance.retrieval.hybrid import HybridRetriever
            from appliance.retrieval.lexical import LexicalIndex

            return HybridRetriever(
                DenseRetriever(store, embedder),
                LexicalIndex(store),
                store,
                embedder,
                settings.candidates,
                settings.rrf_k,
                settings.release_notes_weight,
            )
        case other:
            raise ValueError(f"unknown retrieval mode {other!r}")
