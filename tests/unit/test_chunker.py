"""Chunks fit the window, never cross a page or section, and lose no text."""

from __future__ import annotations

import re

from appliance.components.embedding import Embedder
from appliance.domain import context_header, retrieval_text
from ingest.chunker import Chunker
from ingest.parsers import Block


class WordTokenizer:
    """One token per word: makes the expected cuts easy to reason about."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in re.finditer(r"\S+", text)]


def words(count: int, stem: str = "w") -> str:
    return " ".join(f"{stem}{n}" for n in range(count))


def test_small_blocks_of_one_section_share_a_chunk() -> None:
    blocks = [
        Block("Intro", "Title", section="Intro"),
        Block(words(3), "NarrativeText", section="Intro"),
        Block(words(3, "x"), "NarrativeText", section="Intro"),
    ]
    chunks = Chunker(WordTokenizer(), max_tokens=10, overlap_tokens=2).split(blocks)
    assert len(chunks) == 1
    assert chunks[0].section == "Intro"
    assert chunks[0].tokens == 7


def test_new_section_or_page_starts_a_new_chunk() -> None:
    blocks = [
        Block("A", "Title", page=1, section="A"),
        Block("text a", "NarrativeText", page=1, section="A"),
        Block("more a", "NarrativeText", page=2, section="A"),
        Block("B", "Title", page=2, section="B"),
        Block("text b", "NarrativeText", page=2, section="B"),
    ]
    chunks = Chunker(WordTokenizer(), max_tokens=50, overlap_tokens=0).split(blocks)
    assert [(chunk.page, chunk.section) for chunk in chunks] == [(1, "A"), (2, "A"), (2, "B")]
    assert chunks[0].text == "A\ntext a"


def test_window_is_never_exceeded_and_long_blocks_overlap() -> None:
    text = words(25)
    chunks = Chunker(WordTokenizer(), max_tokens=10, overlap_tokens=2).split(
        [Block(text, "NarrativeText")]
    )
    assert all(chunk.tokens <= 10 for chunk in chunks)
    assert chunks[0].text.split()[-2:] == chunks[1].text.split()[:2]
    covered = {word for chunk in chunks for word in chunk.text.split()}
    assert covered == set(text.split())
    assert chunks[-1].text.split()[-1] == "w24"


def test_real_tokenizer_chunks_fit_all_minilm_window(embedder: Embedder) -> None:
    long_paragraph = "The rollback restores the previous release quickly. " * 120
    chunks = Chunker(embedder, max_tokens=254, overlap_tokens=32).split(
        [Block(long_paragraph, "NarrativeText", page=4)]
    )
    assert len(chunks) > 1
    assert all(embedder.count_tokens(chunk.text) <= 254 for chunk in chunks)
    assert all(chunk.page == 4 for chunk in chunks)


def test_a_chunk_leaves_room_for_its_header_in_the_window() -> None:
    title, section = "Server Configuration", "Resource Consumption"
    blocks = [Block(words(40), "NarrativeText", section=section)]
    chunks = Chunker(WordTokenizer(), max_tokens=12, overlap_tokens=2).split(blocks, title)
    header = context_header(title, section)  # "Server Configuration › Resource Consumption"
    assert all(len(retrieval_text(c.text, title, c.section).split()) <= 12 for c in chunks)
    assert all(len(chunk.text.split()) == 12 - len(header.split()) - 1 for chunk in chunks[:-1])
    covered = {word for chunk in chunks for word in chunk.text.split()}
    assert covered == set(words(40).split())


def test_real_tokenizer_chunks_with_their_header_fit_the_window(embedder: Embedder) -> None:
    title = "20.4. Resource Consumption — PostgreSQL 15 documentation"
    long_paragraph = "The rollback restores the previous release quickly. " * 120
    chunks = Chunker(embedder, max_tokens=254, overlap_tokens=32).split(
        [Block(long_paragraph, "NarrativeText", section="20.4.1. Memory")], title
    )
    assert all(
        embedder.count_tokens(retrieval_text(chunk.text, title, chunk.section)) <= 254
        for chunk in chunks
    )


def test_a_label_is_carried_into_the_chunk_of_what_it_names() -> None:
    blocks = [
        Block(words(6, "a") + ".", "NarrativeText"),
        Block("work_mem (integer)", "UncategorizedText"),
        Block(words(6, "b") + ".", "NarrativeText"),
    ]
    chunks = Chunker(WordTokenizer(), max_tokens=9, overlap_tokens=0).split(blocks)
    assert [chunk.text.splitlines() for chunk in chunks] == [
        [words(6, "a") + "."],
        ["work_mem (integer)", words(6, "b") + "."],
    ]
