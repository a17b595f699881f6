"""Builds the appliance's components from settings once, and hands them to the API and CLI."""

from __future__ import annotations

from functools import cached_property

from llama_index.core.llms import LLM

from appliance.answering.answer_service import AnswerService
from appliance.components.embedding import Embedder, build_embedder
from appliance.components.llm import build_llm
from appliance.components.vector_store import build_chunk_store
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.retrieval.dense import DenseRetriever
from appliance.settings import Settings


class Components:
    """Lazy: `appliance search` never loads an LLM client, `models stop` loads nothing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedding)

    @cached_property
    def chunk_store(self) -> ChromaChunkStore:
        return build_chunk_store(self.settings)

    @cached_property
    def llm(self) -> LLM:
        return build_llm(self.settings.llm)

    @cached_property
    def answers(self) -> AnswerService:
        retriever = DenseRetriever(self.chunk_store, self.embedder)
        return AnswerService(self.settings, retriever, self.llm)
