"""Dense and BM25 candidates fused by reciprocal rank; every hit keeps its cosine similarity."""

from __future__ import annotations

import dataclasses

import numpy as np

from appliance.auth.principal import Principal
from appliance.components.embedding import Embedder
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.domain import Hit
from appliance.retrieval.dense import DenseRetriever
from appliance.retrieval.lexical import LexicalIndex
from appliance.retrieval.release_notes import asks_about_change, is_release_notes


def reciprocal_rank_fusion(
    rankings: list[list[str]], k: int, weights: dict[str, float] | None = None
) -> list[str]:
    """Ids ordered by the sum of 1 / (k + rank) over the rankings they appear in, times their
    weight (1 unless `weights` says otherwise)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    for item, weight in (weights or {}).items():
        if item in scores:
            scores[item] *= weight
    return sorted(scores, key=lambda item: (-scores[item], item))


class BM25Retriever:
    """Lexical only; hits carry their cosine to the question so scores mean the same everywhere."""

    def __init__(self, lexical: LexicalIndex, store: ChromaChunkStore, embedder: Embedder) -> None:
        self._lexical = lexical
        self._store = store
        self._embedder = embedder

    def retrieve(
        self, question: str, top_k: int, principal: Principal, collections: list[str] | None = None
    ) -> list[Hit]:
        hits = [hit for hit, _ in self._lexical.search(question, top_k, principal, collections)]
        return with_cosines(question, hits, self._store, self._embedder)


def with_cosines(
    question: str, hits: list[Hit], store: ChromaChunkStore, embedder: Embedder
) -> list[Hit]:
    missing = [hit.chunk_id for hit in hits if hit.score == 0.0]
    if not missing:
        return hits
    vectors = store.embeddings(missing)
    query = np.asarray(embedder.embed_query(question), dtype=np.float32)
    scored = []
    for hit in hits:
        if hit.chunk_id in vectors:
            cosine = float(np.dot(query, np.asarray(vectors[hit.chunk_id], dtype=np.float32)))
            hit = dataclasses.replace(hit, score=round(cosine, 4))
        scored.append(hit)
    return scored


class HybridRetriever:
    def __init__(
        self,
        dense: DenseRetriever,
        lexical: LexicalIndex,
        store: ChromaChunkStore,
        embedder: Embedder,
        candidates: int,
        rrf_k: int,
        release_notes_weight: float = 1.0,
    ) -> None:
        self._release_notes_weight = release_notes_weight
        self._dense = dense
        self._lexical = lexical
        self._store = store
        self._embedder = embedder
        self._candidates = candidates
        self._rrf_k = rrf_k

    def retrieve(
        self, question: str, top_k: int, principal: Principal, collections: list[str] | None = None
    ) -> list[Hit]:
        n = max(self._candidates, top_k)
        state = self._store.state()  # one read for both searches
        dense = self._dense.retrieve(question, n, principal, collections, state.hidden)
        lexical = [
            hit for hit, _ in self._lexical.search(question, n, principal, collections, state)
        ]
        by_id = {hit.chunk_id: hit for hit in lexical} | {hit.chunk_id: hit for hit in dense}
        weights = {}
        if self._release_notes_weight != 1.0 and not asks_about_change(question):
            weights = {
                chunk_id: self._release_notes_weight
                for chunk_id, hit in by_id.items()
                if is_release_notes(hit.title)
            }
        fused = reciprocal_rank_fusion(
            [[hit.chunk_id for hit in dense], [hit.chunk_id for hit in lexical]],
            self._rrf_k,
            weights,
        )
        return with_cosines(
            question, [by_id[chunk_id] for chunk_id in fused[:top_k]], self._store, self._embedder
        )
