"""The answer prompt: numbered sources, then the question; versioned because audits cite it."""

from __future__ import annotations

import re

from llama_index.core.llms import ChatMessage, MessageRole

from appliance.domain import Hit

PROMPT_VERSION = "numbered-sources-v1"

SYSTEM = (
    "You answer questions about the company's internal documents. Use only the numbered "
    "sources below. Cite every source you use with its number in brackets, like [1]. If the "
    "sources do not contain the answer, say that the documents do not answer the question."
)

# Rough characters per token for budgeting; generous so the prompt never overflows the model.
_CHARS_PER_TOKEN = 3.5
_RESERVED_TOKENS = 160  # instructions, question and chat-template overhead
CITATION = re.compile(r"\[(\d+)\]")


def source_label(hit: Hit) -> str:
    where = hit.path.rsplit("/", 1)[-1]
    if hit.page is not None:
        where += f", page {hit.page}"
    elif hit.section:
        where += f", section '{hit.section}'"
    return where


def fit_sources(hits: list[Hit], context_window: int, max_answer_tokens: int) -> list[Hit]:
    """The best-ranked hits whose text fits the model's window beside the answer."""
    budget = (context_window - max_answer_tokens - _RESERVED_TOKENS) * _CHARS_PER_TOKEN
    kept: list[Hit] = []
    for hit in hits:
        cost = len(hit.text) + len(source_label(hit)) + 8
        if cost > budget:
            break
        kept.append(hit)
        budget -= cost
    return kept


def build_messages(question: str, hits: list[Hit], system_role: bool = True) -> list[ChatMessage]:
    """The chat: instructions, then the numbered sources and the question. Without a system
    role (a template that refuses one), the instructions open the user message."""
    sources = "\n\n".join(
        f"[{number}] ({source_label(hit)})\n{hit.text}" for number, hit in enumerate(hits, 1)
    )
    user = f"Sources:\n{sources}\n\nQuestion: {question}"
    if not system_role:
        return [ChatMessage(role=MessageRole.USER, content=f"{SYSTEM}\n\n{user}")]
    return [
        ChatMessage(role=MessageRole.SYSTEM, content=SYSTEM),
        ChatMessage(role=MessageRole.USER, content=user),
    ]


def cited_numbers(answer: str) -> set[int]:
    return {int(number) for number in CITATION.findall(answer)}
