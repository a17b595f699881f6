"""Runs a gold set through retrieval (and answering) under one retrieval mode, and scores it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

from appliance.answering.claims import Evidence, shown_unflagged
from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.domain import Answer, Hit
from appliance.errors import InferenceUnavailable
from appliance.evaluation import metrics
from appliance.evaluation.gold import GoldQuestion
from appliance.settings import Settings
from appliance.settings.settings import AnsweringSettings, RetrievalSettings

MODES: tuple[str, ...] = get_args(RetrievalSettings.model_fields["mode"].annotation)
ANSWER_MODES: tuple[str, ...] = get_args(AnsweringSettings.model_fields["mode"].annotation)
# What `--min` may name: the higher the better. Latencies are reported, not gated.
QUALITY = ("hit@1", "hit@5", "mrr", "ndcg@10", "answer_contains")
# Shares of the answers: the model stated a number, identifier or quote no passage contains;
# it was flagged / replaced; and what a reader would see unmarked (the one that must be 0).
CLAIMS = ("unsupported", "flagged", "replaced", "unsupported_shown_unflagged")
LATENCY = ("retrieval_p50_ms", "retrieval_p95_ms", "answer_p50_ms", "answer_p95_ms")
METRICS = (*QUALITY, "abstention", *CLAIMS, *LATENCY)

Search = Callable[[str, int], list[Hit]]
Ask = Callable[[str], Answer]


@dataclass
class QuestionResult:
    question: str
    expected_source: str
    relevance: list[bool]
    paths: list[str]
    retrieval_seconds: float
    answer: str | None = None
    answer_seconds: float | None = None
    # None where the line has no expected answer, or nothing was generated.
    answer_contains: bool | None = None
    abstained: bool | None = None
    # The claim check's view of the answer (None where nothing was answered).
    unsupported: bool | None = None
    flagged: bool | None = None
    replaced: bool | None = None
    unsupported_shown_unflagged: bool | None = None

    @property
    def first_relevant_rank(self) -> int | None:
        return next((rank for rank, hit in enumerate(self.relevance, 1) if hit), None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "first_relevant_rank": self.first_relevant_rank}


@dataclass
class EvalRun:
    mode: str
    top_k: int
    generated: bool
    results: list[QuestionResult] = field(default_factory=list)
    answer_mode: str | None = None

    @property
    def label(self) -> str:
        return f"{self.mode}/{self.answer_mode}" if self.answer_mode else self.mode

    def _share(self, name: str) -> float | None:
        flags = [getattr(r, name) for r in self.results if getattr(r, name) is not None]
        return metrics.mean([float(flag) for flag in flags])

    def metrics(self) -> dict[str, float | None]:
        rankings = [result.relevance for result in self.results]
        contains = [r.answer_contains for r in self.results if r.answer_contains is not None]
        abstained = [r.abstained for r in self.results if r.abstained is not None]
        retrieval_ms = [result.retrieval_seconds * 1000 for result in self.results]
        answer_ms = [r.answer_seconds * 1000 for r in self.results if r.answer_seconds is not None]
        return {
            "hit@1": metrics.mean([metrics.hit_at(ranking, 1) for ranking in rankings]),
            "hit@5": metrics.mean([metrics.hit_at(ranking, 5) for ranking in rankings]),
            "mrr": metrics.mean([metrics.reciprocal_rank(ranking) for ranking in rankings]),
            "ndcg@10": metrics.mean([metrics.ndcg_at(ranking, 10) for ranking in rankings]),
            "answer_contains": metrics.mean([float(flag) for flag in contains]),
            "abstention": metrics.mean([float(flag) for flag in abstained]),
            **{name: self._share(name) for name in CLAIMS},
            "retrieval_p50_ms": metrics.percentile(retrieval_ms, 50),
            "retrieval_p95_ms": metrics.percentile(retrieval_ms, 95),
            "answer_p50_ms": metrics.percentile(answer_ms, 50),
            "answer_p95_ms": metrics.percentile(answer_ms, 95),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "answer_mode": self.answer_mode,
            "top_k": self.top_k,
            "generated": self.generated,
            "questions": len(self.results),
            "metrics": self.metrics(),
            "results": [result.to_dict() for result in self.results],
        }


def run_gold(
    gold: Sequence[GoldQuestion],
    mode: str,
    search: Search,
    ask: Ask | None = None,
    top_k: int = 10,
    on_question: Callable[[], None] | None = None,
    answer_mode: str | None = None,
) -> EvalRun:
    """Every gold question once; `ask` (answering) is optional."""
    # One untimed search first: loading the model and building the BM25 index are not latency.
    search(gold[0].question, top_k)
    run = EvalRun(mode=mode, top_k=top_k, generated=ask is not None, answer_mode=answer_mode)
    for item in gold:
        started = time.perf_counter()
        hits = search(item.question, top_k)
        result = QuestionResult(
            question=item.question,
            expected_source=item.expected_source,
            relevance=[item.is_source(hit.path) for hit in hits],
            paths=[hit.path for hit in hits],
            retrieval_seconds=time.perf_counter() - started,
        )
        if ask is not None:
            started = time.perf_counter()
            answer = ask(item.question)
            result.answer_seconds = time.perf_counter() - started
            result.answer = answer.text
            if item.expected_answer:
                result.answer_contains = _normal(item.expected_answer) in _normal(answer.text)
            result.abstained = answer.abstained
            _claim_results(result, answer)
        run.results.append(result)
        if on_question:
            on_question()
    return run


def _claim_results(result: QuestionResult, answer: Answer) -> None:
    result.unsupported = bool(answer.unsupported_claims)
    result.flagged = result.unsupported and answer.claim_check == "flag"
    result.replaced = answer.replaced
    # Checked again here, on the text a reader gets, against the passages it cites from:
    # what the answer service did is not taken on trust.
    passages = [citation.hit.text for citation in answer.citations]
    result.unsupported_shown_unflagged = bool(
        shown_unflagged(answer.text, Evidence(passages, answer.question))
    )


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def runs_for_modes(
    settings: Settings,
    gold: Sequence[GoldQuestion],
    modes: Sequence[str],
    principal: Principal,
    generate: bool,
    top_k: int,
    on_question: Callable[[], None] | None = None,
    answer_modes: Sequence[str] = (),
) -> Iterator[EvalRun]:
    """The gold set under each retrieval mode (and each answering mode, when answering),
    through the same services `appliance ask` uses."""
    shared: Components | None = None
    pairs = [(mode, answer_mode) for mode in modes for answer_mode in answer_modes or [None]]
    for mode, answer_mode in pairs:
        retrieval = settings.retrieval.model_copy(update={"mode": mode})
        answering = settings.answering
        if answer_mode:
            answering = answering.model_copy(update={"mode": answer_mode})
        update = {"retrieval": retrieval, "answering": answering}
        components = Components(settings.model_copy(update=update))
        if shared is None:
            shared = components
        else:
            # The modes differ in the retriever only: load the embedder and open Chroma once.
            components.embedder = shared.embedder
            components.chunk_store = shared.chunk_store
        service = components.answers

        def search(question: str, k: int, service=service) -> list[Hit]:
            return service.search(question, principal, k)

        def ask(question: str, service=service) -> Answer:
            try:
                return service.ask(question, principal)
            except InferenceUnavailable as error:
                raise InferenceUnavailable(
                    f"{error.message}; or measure retrieval alone with --retrieval-only"
                ) from error

        yield run_gold(
            gold, mode, search, ask if generate else None, top_k, on_question, answer_mode
        )


def parse_threshold(text: str) -> tuple[str, float]:
    """`hit@5=0.9` as ("hit@5", 0.9); ValueError with a sentence when it is not one."""
    name, sep, value = text.partition("=")
    name = name.strip().lower().replace("-", "_")
    if not sep or name not in QUALITY:
        raise ValueError(f"{text!r} is not METRIC=VALUE with METRIC one of {', '.join(QUALITY)}")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"{text!r}: {value!r} is not a number") from None


def gate(measured: dict[str, float | None], thresholds: Sequence[tuple[str, float]]) -> list[str]:
    """What falls short of its threshold, as sentences; a metric not measured falls short too."""
    failures = []
    for name, minimum in thresholds:
        value = measured.get(name)
        if value is None:
            failures.append(f"{name} was not measured, so it cannot reach {minimum}")
        elif value < minimum:
            failures.append(f"{name} is {value:.3f}, below the minimum {minimum}")
    return failures
