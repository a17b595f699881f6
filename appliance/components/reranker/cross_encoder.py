"""A sentence-transformers CrossEncoder read from a local folder (from the air-gapped bundle).

A cross-encoder reads the question and a passage together, which ranks better than comparing two
embeddings, at the cost of one model pass per candidate; so it only reorders the few candidates
the retriever already found (retrieval.rerank_candidates), never the whole index.
"""

from __future__ import annotations

from pathlib import Path

from appliance.domain import Hit
from appliance.errors import ApplianceError


class RerankerUnavailable(ApplianceError):
    status_code = 503


class CrossEncoderReranker:
    def __init__(self, folder: Path, batch_size: int = 16) -> None:
        if not (folder / "config.json").is_file():
            raise RerankerUnavailable(
                f"retrieval.reranker_model {folder} is not a model folder (no config.json); "
                "copy a cross-encoder there from the bundle, or set retrieval.reranker: none"
            )
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(str(folder), device="cpu", local_files_only=True)
        self._batch_size = batch_size

    def scores(self, question: str, texts: list[str]) -> list[float]:
        pairs = [(question, text) for text in texts]
        return [float(score) for score in self._model.predict(pairs, batch_size=self._batch_size)]

    def rerank(self, question: str, hits: list[Hit], top_k: int) -> list[Hit]:
        if not hits:
            return []
        scored = zip(self.scores(question, [hit.text for hit in hits]), hits, strict=True)
        ranked = sorted(scored, key=lambda pair: -pair[0])
        return [hit for _, hit in ranked[:top_k]]
