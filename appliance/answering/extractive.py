"""The extractive answer: the retrieved passages' sentences that best answer the question,
quoted word for word with their [n] citations. No language model, so nothing is invented.

Sentences are scored with what retrieval already loaded: the embedder's cosine between the
question and the sentence (read with the short label its paragraph sits under, such as a setting
name above its description), the share of the question's rarer words the sentence holds, the
rank of its passage, and whether it holds the kind of thing asked for (a quantity for "how
long", a name or command for "which command"). The weights were fitted on five public gold sets
(see README "Answers that hold"); `bench/answers.py` measures them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from appliance.answering.citation_check import content_words
from appliance.answering.claims import find_claims
from appliance.components.embedding import Embedder
from appliance.domain import Hit, is_label

# Sentence ends, unless the word before the period is an abbreviation or a single letter.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[`'A-Z0-9])")
_ABBREVIATION_TEXT = "e.g i.e etc vs cf al fig no approx resp esp incl"
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
_QUANTITY_QUESTION = re.compile(
    r"\b(how (long|many|much|big|large|often|far|old|fast|soon)|what (size|port|percentage)|"
    r"(maximum|minimum|max|min|default|limit|timeout|interval|size|number|port|duration|"
    r"length|amount|version|capacity)s?\b)",
    re.IGNORECASE,
)
_NAME_QUESTION = re.compile(
    r"\b(which|what) (command|option|flag|switch|file|directory|folder|path|variable|setting|"
    r"parameter|function|method|class|module|package|tool|program|utility|directive|key|"
    r"exception|argument|field|keyword|signal|daemon|service|library)s?\b|\bhow (do|can|should)"
    r" (i|we|you)\b|\bwhat is the name\b|\bcalled\b",
    re.IGNORECASE,
)
# How many later sentences of its paragraph may complete a quote (see `completed`).
_COMPLETION_REACH = 4
_DEFAULT = re.compile(r"\bdefault", re.IGNORECASE)
_RULE = re.compile(r"(?<!\S)([=\-~_*#^+])\1{2,}(?!\S)")
_MAX_SENTENCE_CHARS = 600
_SECTION_NUMBER = re.compile(r"^(?:[A-Z]\.|\d+\.)(?:\d+\.?)*\s+")


@dataclass(frozen=True)
class Weights:
    """How much each signal counts. Fitted by grid search on four gold sets at once
    (PostgreSQL, Python, Debian handbook manuals and the sample corpus, 143 questions): these
    sit inside a plateau where the worst set moves by at most one question, not on one set's
    peak. bench/answers.py measures the result."""

    dense: float = 1.0
    # The sentence's paragraph: "The default is 16 megabytes." says what of only beside
    # "Set the WAL segment size" before it.
    paragraph: float = 0.25
    lexical: float = 0.6
    rank: float = 0.3
    answer_kind: float = 0.25


@dataclass(frozen=True)
class Quote:
    """A sentence of source `number`, with the label it sits under, and its score."""

    number: int
    sentence: str
    label: str | None
    score: float

    def render(self) -> str:
        lead = f"{self.label}: " if self.label else ""
        return f"{lead}{self.sentence} [{self.number}]"


@dataclass(frozen=True)
class _Candidate:
    """One sentence, or two that follow each other in a paragraph ("Sets the planner's cost of
    a random page fetch. The default is 4.0."), with the label above the paragraph."""

    number: int
    rank: int
    sentence: str
    label: str | None
    # The paragraph (one parsed block) the sentences are part of, read with its label.
    paragraph: str
    # Which sentences of that paragraph: (paragraph's place among all, first, last).
    place: tuple[int, int, int]
    # The paragraph's sentences after these, for completing an answer (see `completed`).
    following: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.label}: {self.sentence}" if self.label else self.sentence

    def overlaps(self, other: _Candidate) -> bool:
        mine, theirs = self.place, other.place
        return mine[0] == theirs[0] and mine[1] <= theirs[2] and theirs[1] <= mine[2]


def split_sentences(line: str) -> list[str]:
    pieces, start = [], 0
    for boundary in _SENTENCE_END.finditer(line):
        before = line[start : boundary.start()].rstrip(".!?").rsplit(None, 1)
        word = before[-1].lower() if before else ""
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        pieces.append(line[start : boundary.start()].strip())
        start = boundary.end()
    pieces.append(line[start:].strip())
    return [piece for piece in pieces if piece]


def layout_lines(raw: str) -> list[str]:
    """The lines of a parsed block, with plain-text heading underlines ("=====", "-----")
    read as the line breaks they were before parsing joined them: "Session limits -----
    A VPN session expires ..." is a heading over a sentence, not one sentence."""
    pieces = [" ".join(piece.split()) for piece in _RULE.sub("\n", raw).split("\n")]
    lines: list[str] = []
    for index, piece in enumerate(pieces):
        if not piece:
            continue
        underlined = index + 1 < len(pieces)  # a rule came after it
        sentences = split_sentences(piece)
        # Only the words just above a rule are its heading; earlier sentences stay text.
        if underlined and len(sentences) > 1 and is_label(sentences[-1]):
            lines.append(piece[: piece.rindex(sentences[-1])].strip())
            lines.append(sentences[-1])
        else:
            lines.append(piece)
    return [line for line in lines if line]


def candidates(hits: Sequence[Hit], window: int = 2) -> list[_Candidate]:
    """Every quotable run of up to `window` sentences of a paragraph, with its label."""
    found = []
    paragraphs = 0
    for rank, hit in enumerate(hits):
        label: str | None = None
        for line in (line for raw in hit.text.split("\n") for line in layout_lines(raw)):
            if is_label(line):
                # "13.5. Serialization Failure Handling": the number orients nobody in a quote
                # and reads as a claim the sentence does not make.
                label = _SECTION_NUMBER.sub("", line) or None
                continue
            paragraph = f"{label}: {line}" if label else line
            sentences = [
                sentence[:_MAX_SENTENCE_CHARS]
                for sentence in split_sentences(line)
                if len(sentence.split()) >= 3
            ]
            for first in range(len(sentences)):
                for last in range(first, min(first + window, len(sentences))):
                    text = " ".join(sentences[first : last + 1])
                    place = (paragraphs, first, last)
                    after = tuple(sentences[last + 1 : last + 1 + _COMPLETION_REACH])
                    found.append(_Candidate(rank + 1, rank, text, label, paragraph, place, after))
            paragraphs += 1
    return found


def _answer_kind(question: str, text: str) -> float:
    """1 when the text holds what the question asks for (a quantity, a name), else 0."""
    kinds = {kind for _, _, kind, _ in find_claims(text)}
    if _QUANTITY_QUESTION.search(question) and "number" in kinds:
        return 1.0
    if _NAME_QUESTION.search(question) and kinds & {"identifier", "quote"}:
        return 1.0
    return 0.0


def completed(question: str, candidate: _Candidate) -> str:
    """The candidate's text, and when the question asks for a quantity (or a default) that it
    lacks, the later sentence of its paragraph that gives one: manuals describe a setting first
    and state its default a few sentences on ("Specifies the minimum delay between runs. [...]
    The default is one minute (1min).")."""
    wants_default = bool(_DEFAULT.search(question))
    wants_quantity = bool(_QUANTITY_QUESTION.search(question))
    if not (wants_default or wants_quantity):
        return candidate.sentence

    def answers(text: str) -> bool:
        has_number = any(kind == "number" for _, _, kind, _ in find_claims(text))
        if wants_default and not _DEFAULT.search(text):
            return False
        return has_number or not wants_quantity

    if answers(candidate.sentence):
        return candidate.sentence
    for distance, sentence in enumerate(candidate.following):
        if answers(sentence):
            gap = " " if distance == 0 else " […] "
            return f"{candidate.sentence}{gap}{sentence}"
    return candidate.sentence


class SentenceExtractor:
    def __init__(self, embedder: Embedder, weights: Weights | None = None) -> None:
        self._embedder = embedder
        self.weights = weights or Weights()

    def quotes(
        self, question: str, hits: Sequence[Hit], most: int = 2, window: int = 2
    ) -> list[Quote]:
        """The best `most` runs of up to `window` sentences, best first, none overlapping
        another."""
        found = candidates(hits, window)
        if not found:
            return []
        scores = self._scores(question, found)
        order = sorted(range(len(found)), key=lambda index: -scores[index])
        chosen = [order[0]]
        for index in order[1:]:
            if len(chosen) >= most:
                break
            if not any(found[index].overlaps(found[other]) for other in chosen):
                chosen.append(index)
        return [
            Quote(
                found[i].number,
                completed(question, found[i]),
                found[i].label,
                round(scores[i], 4),
            )
            for i in chosen
        ]

    def _scores(self, question: str, found: list[_Candidate]) -> list[float]:
        weights = self.weights
        texts = [candidate.text for candidate in found]
        paragraphs = sorted({candidate.paragraph for candidate in found})
        query = np.asarray(self._embedder.embed_query(question), dtype=np.float32)
        vectors = np.asarray(self._embedder.embed_documents(texts + paragraphs), dtype=np.float32)
        similarity = vectors @ query
        dense = similarity[: len(texts)]
        by_paragraph = dict(zip(paragraphs, similarity[len(texts) :], strict=True))
        asked = content_words(question)
        held = [content_words(text) for text in texts]
        # Rarer among these sentences, more telling: "default" in one sentence of forty
        # says more than "server" in thirty.
        idf = {
            term: math.log(1 + len(held) / (1 + sum(term in words for words in held)))
            for term in asked
        }
        total = sum(idf.values()) or 1.0
        scores = []
        for index, candidate in enumerate(found):
            lexical = sum(idf[term] for term in asked & held[index]) / total
            score = (
                weights.dense * float(dense[index])
                + weights.paragraph * float(by_paragraph[candidate.paragraph])
                + weights.lexical * lexical
                + weights.rank / (1 + candidate.rank)
                + weights.answer_kind * _answer_kind(question, candidate.text)
            )
            scores.append(score)
        return scores


def render(quotes: Sequence[Quote]) -> str:
    """The quotes as the answer's text: one per line, each with its citation."""
    return "\n".join(quote.render() for quote in quotes)
