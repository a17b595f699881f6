"""Retrieve, prompt the inference service, stream the answer, and attach numbered citations."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import openai
from llama_index.core.llms import LLM

from appliance.answering.citation_check import check_citations, drop_unsupported
from appliance.answering.first_token import first_token_within
from appliance.answering.prompt import (
    PROMPT_VERSION,
    build_messages,
    cited_numbers,
    fit_sources,
    source_label,
)
from appliance.auth.principal import Principal, acting
from appliance.domain import Answer, Citation, Hit
from appliance.errors import InferenceUnavailable
from appliance.retrieval import Retriever
from appliance.settings import Settings
from appliance.settings.settings import AnsweringSettings

if TYPE_CHECKING:
    from appliance.connectors.cohere import CohereConnector

_UNREACHABLE = (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)


class AnswerStream:
    """Iterate for the answer's text as it is generated; `answer` is complete afterwards.

    When the model fails before or while answering and `degrade` is set, the stream ends with a
    notice and the list of retrieved passages instead of raising, so the asker still gets them.
    """

    def __init__(
        self,
        question: str,
        hits: list[Hit],
        deltas: Iterator[str],
        model: str,
        settings: AnsweringSettings,
        on_done: Callable[[Answer], None] | None = None,
        left_building: bool = False,
        abstained: bool = False,
    ) -> None:
        self.question = question
        self.hits = hits
        self._deltas = deltas
        self._model = model
        self._settings = settings
        self._on_done = on_done
        self._left_building = left_building
        self._abstained = abstained
        self._started = time.perf_counter()
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        first_token_at: float | None = None
        notice: str | None = None
        try:
            for delta in self._deltas:
                if first_token_at is None:
                    first_token_at = time.perf_counter() - self._started
                parts.append(delta)
                yield delta
        except InferenceUnavailable as error:
            if self._settings.when_inference_fails != "passages":
                raise
            notice = fallback_notice(error, answered_part=bool(parts))
            fallback = f"{notice}\n\n{passage_list(self.hits)}".rstrip()
            yield ("\n\n" if parts else "") + fallback
        model_text = "".join(parts).strip()
        citations, text = self._checked_citations(model_text)
        if notice is not None:
            text = f"{text}\n\n{notice}\n\n{passage_list(self.hits)}".strip()
        self.answer = Answer(
            question=self.question,
            text=text,
            citations=citations,
            model=self._model,
            prompt_version=PROMPT_VERSION,
            seconds_to_first_token=first_token_at,
            seconds_total=time.perf_counter() - self._started,
            left_building=self._left_building,
            abstained=self._abstained,
            notice=notice,
        )
        if self._on_done:
            self._on_done(self.answer)

    def _checked_citations(self, text: str) -> tuple[list[Citation], str]:
        """Numbered citations with the support check applied, and the answer text to keep."""
        cited = set() if self._abstained else cited_numbers(text)
        mode = self._settings.citation_check
        if mode == "off" or not cited:
            citations = [
                Citation(number=number, hit=hit, cited=number in cited)
                for number, hit in enumerate(self.hits, 1)
            ]
            return citations, text
        sources = {number: hit.text for number, hit in enumerate(self.hits, 1)}
        minimum = self._settings.citation_min_overlap
        support = check_citations(text, sources, minimum)
        if mode == "drop":
            text = drop_unsupported(text, sources, minimum)
            cited = cited_numbers(text)
        citations = []
        for number, hit in enumerate(self.hits, 1):
            verdict = support.get(number)
            citations.append(
                Citation(
                    number=number,
                    hit=hit,
                    cited=number in cited,
                    supported=verdict.supported if verdict else None,
                    overlap=verdict.overlap if verdict else None,
                )
            )
        return citations, text


def fallback_notice(error: InferenceUnavailable, answered_part: bool) -> str:
    what = "The answer was cut off" if answered_part else "The language model could not answer"
    return f"{what}: {error.message}. The passages that best match the question follow."


def passage_list(hits: list[Hit], width: int = 240) -> str:
    """The retrieved passages as numbered lines, for readers that only see the answer's text."""
    lines = []
    for number, hit in enumerate(hits, 1):
        snippet = " ".join(hit.text.split())
        if len(snippet) > width:
            snippet = snippet[: width - 1].rstrip() + "…"
        lines.append(f"[{number}] {source_label(hit)}: {snippet}")
    return "\n".join(lines)


def abstention_text(best: float | None, threshold: float) -> str:
    if best is None:
        return "None of the documents you may read matches this question."
    return (
        "The documents do not answer this question: the closest passage scores "
        f"{best:.2f}, below the {threshold:.2f} the appliance needs to answer. "
        "The nearest passages are listed as sources."
    )


# Called with who asked, over which collections, and the finished answer (the audit record).
AnswerListener = Callable[[Principal, list[str] | None, Answer], None]


class AnswerService:
    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        llm: LLM,
        on_answer: AnswerListener | None = None,
        connector: CohereConnector | None = None,
    ) -> None:
        self._settings = settings
        self._retriever = retriever
        self._llm = llm
        self._on_answer = on_answer
        self._connector = connector

    def search(
        self,
        query: str,
        principal: Principal,
        top_k: int | None = None,
        collections: list[str] | None = None,
    ) -> list[Hit]:
        """The chunks nearest the query among those `principal` may read (in `collections`)."""
        k = top_k or self._settings.retrieval.top_k
        return self._retriever.retrieve(query, k, principal, collections)

    def stream(
        self,
        question: str,
        principal: Principal,
        top_k: int | None = None,
        collections: list[str] | None = None,
    ) -> AnswerStream:
        llm_settings = self._settings.llm
        acting.set(principal)
        # Only a question scoped to collections an admin let out may use the cloud connector;
        # an unscoped one covers every collection the asker reads, so it never does.
        scope = set(collections or ())
        outbound = self._connector if self._connector and self._connector.may_send(scope) else None
        k = top_k or self._settings.retrieval.top_k
        if outbound and outbound.uses("rerank"):
            candidates = self.search(question, principal, k * 3, collections)
            ranked = outbound.rerank(
                question, [(hit.chunk_id, hit.text) for hit in candidates], k, collections=scope
            )
            by_id = {hit.chunk_id: hit for hit in candidates}
            found = [by_id[chunk_id] for chunk_id, _ in ranked]
        else:
            found = self.search(question, principal, k, collections)
        answering = self._settings.answering
        listener = self._on_answer

        def done(answer: Answer) -> None:
            if listener:
                listener(principal, collections, answer)

        best = max((hit.score for hit in found), default=None)
        if best is None or best < answering.abstain_below:
            # Nothing close enough: say so without asking the model (which would make something
            # up from unrelated passages), and still show the nearest passages.
            text = abstention_text(best, answering.abstain_below)
            return AnswerStream(question, found, iter([text]), "", answering, done, abstained=True)
        hits = fit_sources(found, llm_settings.context_window, llm_settings.max_tokens)
        messages = build_messages(question, hits)

        if outbound and outbound.uses("generate"):
            prompt = "\n\n".join(str(message.content) for message in messages)
            chunk_ids = [hit.chunk_id for hit in hits]
            text = outbound.generate(prompt, collections=scope, chunk_ids=chunk_ids)
            model = f"cohere:{outbound.settings.chat_model}"
            return AnswerStream(
                question, hits, iter([text]), model, answering, done, left_building=True
            )
        left = outbound is not None  # reranking sent the passages out
        deltas = first_token_within(
            self._generate(messages), answering.first_token_budget_s, llm_settings.base_url
        )
        return AnswerStream(
            question, hits, deltas, llm_settings.model, answering, done, left_building=left
        )

    def ask(
        self,
        question: str,
        principal: Principal,
        top_k: int | None = None,
        collections: list[str] | None = None,
    ) -> Answer:
        stream = self.stream(question, principal, top_k, collections)
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
