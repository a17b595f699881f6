"""The embedder: one implementation per file, chosen by `embedding.backend`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from appliance.settings import EmbeddingSettings


class Embedder(Protocol):
    name: str
    dimension: int

    def count_tokens(self, text: str) -> int: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.mode != "sentence_transformers":
        raise ValueError(f"unknown embedding mode {settings.mode!r}")
    # The optional runtime is imported only when it is chosen.
    match settings.backend:
        case "torch":
            from appliance.components.embedding.sentence_transformers import (
                SentenceTransformerEmbedder,
            )

            return SentenceTransformerEmbedder(settings)
        case "openvino":
            from appliance.components.embedding.openvino import OpenVINOEmbedder

            return OpenVINOEmbedder(settings)
    raise ValueError(f"unknown embedding backend {settings.backend!r}")
