"""The embedder: one implementation per file, chosen by `embedding.mode`."""

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
    match settings.mode:
        case "sentence_transformers":
            from appliance.components.embedding.sentence_transformers import (
                SentenceTransformerEmbedder,
            )

            return SentenceTransformerEmbedder(settings)
    raise ValueError(f"unknown embedding mode {settings.mode!r}")
