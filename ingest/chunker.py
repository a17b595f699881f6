"""Cuts parsed blocks into chunks that fit the embedder's window, keeping page and section.

A chunk never spans two pages or two sections, so its citation (page, section) is exact. Blocks
longer than the window are cut on word-piece boundaries with a small overlap, so no text is lost
to the embedder's truncation. Retrieval reads each chunk under its header ("title › section",
appliance.domain.context_header), so a chunk leaves the header's tokens free in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from appliance.domain import context_header, is_label
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
    sizes: list[int] = field(default_factory=list)  # each part's tokens


class Chunker:
    def __init__(self, tokenizer: Tokenizer, max_tokens: int, overlap_tokens: int) -> None:
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self._tokenizer = tokenizer
        self._max = max_tokens
        self._overlap = overlap_tokens

    def split(self, blocks: list[Block], title: str | None = None) -> list[ChunkText]:
        chunks: list[ChunkText] = []
        current: _Open | None = None
        headers: dict[str | None, int] = {}
        for block in blocks:
            if block.section not in headers:
                header = context_header(title, block.section)
                # The header and the line break after it.
                headers[block.section] = self._tokenizer.count_tokens(header) + 1 if header else 0
            limit = max(self._max - headers[block.section], self._overlap + 1)
            for piece, tokens in self._pieces(block.text, limit):
                starts_section = block.category == "Title"
                carried: list[tuple[str, int]] = []
                if current is not None and (
                    starts_section
                    or block.page != current.page
                    or block.section != current.section
                    or current.tokens + tokens > limit
                ):
                    full = current.tokens + tokens > limit and block.section == current.section
                    if full and len(current.parts) > 1 and is_label(current.parts[-1]):
                        # A label ("work_mem (integer)") goes with what it names, not before a cut.
                        carried = [(current.parts.pop(), current.sizes.pop())]
                        current.tokens -= carried[0][1]
                    chunks.append(self._close(current))
                    current = None
                if current is None:
                    current = _Open(parts=[], page=block.page, section=block.section, tokens=0)
                    for text, size in carried:
                        current.parts.append(text)
                        current.sizes.append(size)
                        current.tokens += size
                current.parts.append(piece)
                current.sizes.append(tokens)
                current.tokens += tokens
        if current is not None:
            chunks.append(self._close(current))
        return chunks

    def _pieces(self, text: str, limit: int) -> list[tuple[str, int]]:
        tokens = self._tokenizer.count_tokens(text)
        if tokens <= limit:
            return [(text, tokens)]
        spans = self._tokenizer.token_spans(text)
        step = limit - self._overlap
        pieces = []
        for start in range(0, len(spans), step):
            window = spans[start : start + limit]
            pieces.append((text[window[0][0] : window[-1][1]], len(window)))
            if start + limit >= len(spans):
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
