"""Retrieve, prompt the inference service, stream the answer, and attach numbered citations."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import openai
from llama_index.core.llms import LLM

from appliance.answering.citation_check import check_citations, drop_unsupported
from appliance.answering.claim_guard import ClaimGuard
from appliance.answering.claims import FLAG, Evidence
from appliance.answering.extractive import SentenceExtractor, render
from appliance.answering.first_token import first_token_within
from appliance.answering.mode import AnswerMode, answer_mode
from appliance.answering.prompt import (
    PROMPT_VERSION,
    build_messages,
    cited_numbers,
    fit_sources,
    source_label,
)
from appliance.answering.repetition import is_looping
from appliance.auth.principal import Principal, acting
from appliance.domain import Answer, Citation, Hit
from appliance.errors import InferenceUnavailable, QuestionRejected
from appliance.retrieval import Retriever
from appliance.settings import Settings
from appliance.settings.settings import AnsweringSettings

if TYPE_CHECKING:
    from appliance.connectors.cohere import CohereConnector

_UNREACHABLE = (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)
# A loop is looked for when a sentence or line ends, not at every token.
_ENDS_SENTENCE = re.compile(r"[.!?\n]")


class AnswerStream:
    """Iterate for the answer's text as it is shown; `answer` is complete afterwards.

    A generated answer goes through a ClaimGuard (numbers, identifiers and quotes the passages
    do not contain are flagged, or stop the model and give way to the extractive answer), and
    stops at the model's first repeat. When the model fails before or while answering and
    `answering.when_inference_fails` is `passages`, the stream ends with a notice and the
    extractive answer instead of raising, so the asker still gets what the documents say.
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
        mode: AnswerMode = "generate",
        extract: Callable[[], str] | None = None,
        guard: ClaimGuard | None = None,
    ) -> None:
        self.question = question
        self.hits = hits
        self._deltas = deltas
        self._model = model
        self._settings = settings
        self._on_done = on_done
        self._left_building = left_building
        self._abstained = abstained
        self._mode = mode
        self._extract = extract or (lambda: passage_list(hits))
        self._guard = guard
        self._started = time.perf_counter()
        self.answer: Answer | None = None
        # What has been yielded so far: the record of a stream its reader left holds it.
        self.shown: list[str] = []
        self.generated_tokens = 0

    def __iter__(self) -> Iterator[str]:
        shown = self.shown
        first_token_at: float | None = None
        notice: str | None = None
        try:
            for piece in self._model_text():
                if first_token_at is None:
                    first_token_at = time.perf_counter() - self._started
                shown.append(piece)
                yield piece
        except InferenceUnavailable as error:
            if self._settings.when_inference_fails != "passages":
                raise
            notice = fallback_notice(error, answered_part=bool(shown))
            fallback = f"{notice}\n\n{self._extract()}"
            shown.append(("\n\n" if shown else "") + fallback)
            yield shown[-1]
        guard = self._guard
        stopped_at = guard.stopped if guard else None
        replaced = stopped_at is not None
        if stopped_at is not None:
            notice = replacement_notice(stopped_at.text)
            shown.append(
                ("\n\n" if "".join(shown).strip() else "") + f"{notice}\n\n{self._extract()}"
            )
            yield shown[-1]
        citations, text = self._checked_citations("".join(shown).strip())
        self.answer = Answer(
            question=self.question,
            text=text,
            citations=citations,
            model=self._model,
            prompt_version=PROMPT_VERSION if self._mode == "generate" else "",
            seconds_to_first_token=first_token_at,
            seconds_total=time.perf_counter() - self._started,
            left_building=self._left_building,
            abstained=self._abstained,
            notice=notice,
            mode=self._mode,
            unsupported_claims=[claim.to_dict() for claim in guard.unsupported] if guard else [],
            claim_check=self._settings.unsupported if guard else None,
            replaced=replaced,
            generated_tokens=self.generated_tokens,
        )
        if self._on_done:
            self._on_done(self.answer)

    def _model_text(self) -> Iterator[str]:
        """The model's text as it may be shown: checked by the guard, cut at a loop."""
        guard = self._guard
        deltas = self._deltas
        try:
            written = ""
            counted = self._model not in ("", EXTRACTIVE)  # quotes are not generated tokens
            for delta in deltas:
                written += delta
                # vLLM streams one token a chunk: what answering costs a key (limits.*).
                self.generated_tokens += counted
                piece = guard.feed(delta) if guard else delta
                if piece:
                    yield piece
                if guard and guard.stopped:
                    return
                if _ENDS_SENTENCE.search(delta) and is_looping(written):
                    break
            if guard:
                tail = guard.finish()
                if tail:
                    yield tail
        finally:
            # Stopping early (a loop, an unsupported claim, a reader gone) closes the stream,
            # which closes its HTTP response, and vLLM stops generating for nobody.
            close = getattr(deltas, "close", None)
            if close is not None:
                close()

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
    return f"{what}: {error.message}. What the documents say, quoted:"


def replacement_notice(claim: str) -> str:
    return (
        f"The model's answer was stopped where it stated “{claim}”{FLAG}. "
        "What the documents say, quoted:"
    )


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


# Longer questions are refused: a page of text is not a question, and it would crowd the
# passages out of the model's window.
MAX_QUESTION_CHARS = 4000


def checked_question(question: str) -> str:
    """The question without surrounding white space; QuestionRejected when it is empty or
    too long to be one."""
    question = question.strip()
    if not question:
        raise QuestionRejected("the question is empty: write what you want to know")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionRejected(
            f"the question is {len(question):,} characters long; the limit is "
            f"{MAX_QUESTION_CHARS:,}: ask about one thing at a time"
        )
    return question


# The `model` of an answer quoted from the passages: no language model wrote it.
EXTRACTIVE = "extractive"

# Called with who asked, over which collections, and the finished answer (the audit record).
AnswerListener = Callable[[Principal, list[str] | None, Answer], None]


class AnswerService:
    def __init__(
        self,
        settings: Settings,
        retriever: Retriever,
        llm: LLM,
        extractor: SentenceExtractor,
        on_answer: AnswerListener | None = None,
        connector: CohereConnector | None = None,
        model_size: Callable[[], float | None] = lambda: None,
        system_role: Callable[[], bool] = lambda: True,
    ) -> None:
        self._settings = settings
        self._retriever = retriever
        self._llm = llm
        self._extractor = extractor
        self._on_answer = on_answer
        self._connector = connector
        # The served model's size in billions of parameters (None: unknown), for mode auto.
        self._model_size = model_size
        # Whether the served model's chat template takes a system message (llm.system_role).
        self._system_role = system_role

    def mode(self) -> AnswerMode:
        return answer_mode(self._settings.answering, self._model_size())

    def extract(self, question: str, hits: list[Hit]) -> str:
        """The passages' sentences that best answer the question, each with its [n]."""
        quotes = self._extractor.quotes(question, hits, self._settings.answering.extract_quotes)
        return render(quotes) or passage_list(hits)

    def search(
        self,
        query: str,
        principal: Principal,
        top_k: int | None = None,
        collections: list[str] | None = None,
    ) -> list[Hit]:
        """The chunks nearest the query among those `principal` may read (in `collections`)."""
        k = top_k or self._settings.retrieval.top_k
        return self._retriever.retrieve(checked_question(query), k, principal, collections)

    def stream(
        self,
        question: str,
        principal: Principal,
        top_k: int | None = None,
        collections: list[str] | None = None,
    ) -> AnswerStream:
        question = checked_question(question)
        llm_settings = self._settings.llm
        acting.set(principal)
        # Only a question scoped to collections an admin let out may use the cloud connector;
        # an unscoped one covers every collection the asker reads, so it never does.
        scope = set(collections or ())
        outbound = self._connector if self._connector and self._connector.may_send(scope) else None
        k = top_k or self._settings.retrieval.top_k
        mode = self.mode()
        if mode == "extract" and not (outbound and outbound.uses("generate")) and not top_k:
            # Quotes are chosen from more passages than a prompt holds (no window to fill).
            k = max(k, self._settings.answering.extract_passages)
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
            return AnswerStream(
                question, found, iter([text]), "", answering, done, abstained=True, mode=mode
            )
        if mode == "extract" and not (outbound and outbound.uses("generate")):
            text = self.extract(question, found)
            return AnswerStream(
                question, found, iter([text]), EXTRACTIVE, answering, done, mode=mode
            )
        hits = fit_sources(found, llm_settings.context_window, llm_settings.max_tokens)
        messages = build_messages(question, hits, self._system_role())
        guard = ClaimGuard(Evidence([hit.text for hit in hits], question), answering.unsupported)

        def extract() -> str:
            return self.extract(question, hits)

        if outbound and outbound.uses("generate"):
            prompt = "\n\n".join(str(message.content) for message in messages)
            chunk_ids = [hit.chunk_id for hit in hits]
            text = outbound.generate(prompt, collections=scope, chunk_ids=chunk_ids)
            model = f"cohere:{outbound.settings.chat_model}"
            return AnswerStream(
                question, hits, iter([text]), model, answering, done, left_building=True,
                extract=extract, guard=guard,
            )  # fmt: skip
        left = outbound is not None  # reranking sent the passages out
        deltas = first_token_within(
            self._generate(messages), answering.first_token_budget_s, llm_settings.base_url
        )
        return AnswerStream(
            question, hits, deltas, llm_settings.model, answering, done, left_building=left,
            extract=extract, guard=guard,
        )  # fmt: skip

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
        base_url = " and ".join(self._settings.llm.urls)
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
