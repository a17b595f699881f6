"""BM25 over every chunk's text (bm25s), rebuilt when the chunk store's generation changes.

The chunk store is the one source of truth: any node (API, worker, another API node) that
writes chunks changes its generation token, and every node's lexical index rebuilds from the
store on its next search. The access filter is a mask inside BM25's top-k, as in Chroma.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import bm25s
import numpy as np
import Stemmer

from appliance.auth.access import readable
from appliance.auth.principal import Principal
from appliance.components.vector_store.chroma import ChromaChunkStore, StoreState
from appliance.domain import Hit, retrieval_text

_STEMMER = Stemmer.Stemmer("english")


def _tokens(texts: list[str]) -> Any:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, show_progress=False)


@dataclass(frozen=True)
class _Built:
    generation: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]
    index: bm25s.BM25 | None
    # The chunks' positions by who may read them (groups, collection): a handful of kinds, so
    # a search tests each kind once instead of every chunk (over 100,000 chunks: 0.2 ms, where a
    # Python loop took 19 ms of the API's core a question). Documents being purged are in none.
    by_access: dict[tuple[tuple[str, ...], str], np.ndarray]

    def mask(self, principal: Principal, collections: list[str] | None) -> np.ndarray:
        """1.0 where the principal may read the chunk (in `collections`), else 0.0."""
        mask = np.zeros(len(self.ids), dtype=np.float32)
        for (groups, collection), positions in self.by_access.items():
            if readable(principal, collections, {"groups": groups, "collection": collection}):
                mask[positions] = 1.0
        return mask


def _by_access(
    metadatas: list[dict[str, Any]], hidden: frozenset[str]
) -> dict[tuple[tuple[str, ...], str], np.ndarray]:
    positions: dict[tuple[tuple[str, ...], str], list[int]] = {}
    for position, metadata in enumerate(metadatas):
        if metadata.get("doc_id") in hidden:
            continue
        kind = (tuple(metadata.get("groups") or ()), str(metadata.get("collection") or ""))
        positions.setdefault(kind, []).append(position)
    return {kind: np.array(found, dtype=np.int64) for kind, found in positions.items()}


class LexicalIndex:
    def __init__(self, store: ChromaChunkStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._built: _Built | None = None

    def _current(self, state: StoreState | None = None) -> _Built:
        state = state or self._store.state()
        with self._lock:
            if self._built is None or self._built.generation != state.generation:
                self._built = self._build(state)
            return self._built

    def _build(self, state: StoreState) -> _Built:
        ids, texts, metadatas = self._store.all_chunks()
        index = None
        if ids:
            index = bm25s.BM25()
            # Read as dense retrieval reads them: under their "title › section" header.
            headed = [
                retrieval_text(text, metadata.get("title"), metadata.get("section"))
                for text, metadata in zip(texts, metadatas, strict=True)
            ]
            index.index(_tokens(headed), show_progress=False)
        return _Built(
            state.generation, ids, texts, metadatas, index, _by_access(metadatas, state.hidden)
        )

    def search(
        self,
        question: str,
        top_k: int,
        principal: Principal,
        collections: list[str] | None,
        state: StoreState | None = None,
    ) -> list[tuple[Hit, float]]:
        """The best `top_k` readable chunks by BM25, with their BM25 scores, best first
        (`state`: the store's, when the caller has read it already)."""
        built = self._current(state)
        if built.index is None:
            return []
        mask = built.mask(principal, collections)
        if not mask.any():
            return []
        query = _tokens([question])
        if not query.vocab or not any(query.ids):
            return []
        k = min(top_k, int(mask.sum()))
        # n_threads=0: scored in this thread; any other value starts a thread pool per question.
        rows, scores = built.index.retrieve(
            query, k=k, weight_mask=mask, show_progress=False, n_threads=0
        )
        found: list[tuple[Hit, float]] = []
        for position, score in zip(rows[0], scores[0], strict=True):
            if score <= 0 or not mask[position]:
                continue  # no query word in it: not a lexical match
            hit = Hit.found(
                built.ids[position], built.texts[position], built.metadatas[position], 0.0
            )
            found.append((hit, float(score)))
        return found
