"""Local rerankers, chosen by `retrieval.reranker`: they reorder the retrieved candidates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from appliance.domain import Hit

if TYPE_CHECKING:
    from appliance.settings.settings import RetrievalSettings


class Reranker(Protocol):
    def rerank(self, question: str, hits: list[Hit], top_k: int) -> list[Hit]:
        """The `top_k` of `hits` that best answer `question`, best first."""
        ...


def build_reranker(settings: RetrievalSettings) -> Reranker | None:
    match settings.reranker:
        case "none":
            return None
        case "cross_encoder":
            from appliance.components.reranker.cross_encoder import CrossEncoderReranker

            assert settings.reranker_model is not None  # the settings validator insists
            return CrossEncoderReranker(settings.reranker_model)
    raise ValueError(f"unknown reranker {settings.reranker!r}")
