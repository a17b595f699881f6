"""Cuts parsed blocks into chunks that fit the embedder's window, keeping page and section.

A chunk never spans two pages or two sections, so its citation (page, section) is exact. Blocks
longer than the window are cut on word-piece boundaries with a small overlap, so no text is lost
to the embedder's truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ingest.parsers import Block


class Tokenizer(Protocol):
    def count_tokens(self, text: str) -> int: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class ChunkText:
    text: str
    page: int | None
    section: str | None
    tokens: int


@dataclass
class _Open:
    parts: list[str]
    page: int | None
    section: str | None
    tokens: int


class Chunker:
    def __init__(self, tokenizer: Tokenizer, max_tokens: int, overlap_tokens: int) -> None:
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self._tokenizer = tokenizer
        self._max = max_tokens
        self._overlap = overlap_tokens

    def split(self, blocks: list[Block]) -> list[ChunkText]:
        chunks: list[ChunkText] = []
        current: _Open | None = None
        for block in blocks:
            for piece, tokens in self._pieces(block.text):
                starts_section = block.category == "Title"
                if current is not None and (
                    starts_section
                    or block.page != current.page
                    or block.section != current.section
                    or current.tokens + tokens > self._max
                ):
                    chunks.append(self._close(current))
                    current = None
                if current is None:
                    current = _Open(parts=[], page=block.page, section=block.section, tokens=0)
                current.parts.append(piece)
                current.tokens += tokens
        if current is not None:
            chunks.append(self._close(current))
        return chunks

    def _pieces(self, text: str) -> list[tuple[str, int]]:
        tokens = self._tokenizer.count_tokens(text)
        if tokens <= self._max:
            return [(text, tokens)]
        spans = self._tokenizer.token_spans(text)
        step = self._max - self._overlap
        pieces = []
        for start in range(0, len(spans), step):
            window = spans[start : start + self._max]
            pieces.append((text[window[0][0] : window[-1][1]], len(window)))
            if start + self._max >= len(spans):
                break
        return pieces

    @staticmethod
    def _close(current: _Open) -> ChunkText:
        return ChunkText(
            text="\n".join(current.parts),
            page=current.page,
            section=current.section,
            tokens=current.tokens,
        )
