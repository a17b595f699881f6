"""Retrieve, prompt the inference service, stream the answer, and attach numbered citations."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
from llama_index.core.llms import LLM

from appliance.answering.prompt import PROMPT_VERSION, build_messages, cited_numbers, fit_sources
from appliance.domain import Answer, Citation, Hit
from appliance.errors import InferenceUnavailable
from appliance.retrieval.dense import DenseRetriever
from appliance.settings import Settings

_UNREACHABLE = (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)


class AnswerStream:
    """Iterate for the answer's text as it is generated; `answer` is complete afterwards."""

    def __init__(self, question: str, hits: list[Hit], deltas: Iterator[str], model: str) -> None:
        self.question = question
        self.hits = hits
        self._deltas = deltas
        self._model = model
        self._started = time.perf_counter()
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        first_token_at: float | None = None
        for delta in self._deltas:
            if first_token_at is None:
                first_token_at = time.perf_counter() - self._started
            parts.append(delta)
            yield delta
        text = "".join(parts).strip()
        cited = cited_numbers(text)
        self.answer = Answer(
            question=self.question,
            text=text,
            citations=[
                Citation(number=number, hit=hit, cited=number in cited)
                for number, hit in enumerate(self.hits, 1)
            ],
            model=self._model,
            prompt_version=PROMPT_VERSION,
            seconds_to_first_token=first_token_at,
            seconds_total=time.perf_counter() - self._started,
        )


class AnswerService:
    def __init__(self, settings: Settings, retriever: DenseRetriever, llm: LLM) -> None:
        self._settings = settings
        self._retriever = retriever
        self._llm = llm

    def search(self, query: str, top_k: int | None = None) -> list[Hit]:
        return self._retriever.retrieve(query, top_k or self._settings.retrieval.top_k)

    def stream(self, question: str, top_k: int | None = None) -> AnswerStream:
        llm_settings = self._settings.llm
        hits = fit_sources(
            self.search(question, top_k), llm_settings.context_window, llm_settings.max_tokens
        )
        messages = build_messages(question, hits)
        return AnswerStream(question, hits, self._generate(messages), llm_settings.model)

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        stream = self.stream(question, top_k)
        for _ in stream:
            pass
        assert stream.answer is not None
        return stream.answer

    def _generate(self, messages: list) -> Iterator[str]:
        base_url = self._settings.llm.base_url
        try:
            for response in self._llm.stream_chat(messages):
                if response.delta:
                    yield response.delta
        except _UNREACHABLE as error:
            raise InferenceUnavailable(
                f"the inference service at {base_url} is not answering; start it with "
                "`appliance models serve` (or check llm.base_url)"
            ) from error
        except openai.APIStatusError as error:
            raise InferenceUnavailable(
                f"the inference service at {base_url} refused the request "
                f"(HTTP {error.status_code}): {error.message}"
            ) from error
