"""Does each cited source support the sentence citing it? Measured by stemmed word overlap.

A small model often cites [1] after a sentence it took from [2], or after one it made up. The
check is lexical on purpose: it is cheap, explainable to an auditor ("the sentence shares 2 of its
9 words with the source"), and catches the worst case, a citation pointing at a passage that says
nothing like the sentence. Paraphrases with few shared words can be flagged wrongly; `flag` mode
keeps them visible instead of silently removing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

from appliance.answering.prompt import CITATION

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Sentence ends, or line breaks (list items, headings); citations stay with their sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\[(\"'*-])|\n+")
# Words that carry no claim; a sentence is judged on the rest.
_STOPWORD_TEXT = """
a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few
for from further had has have having he her here hers him his how i if in into is it its
itself just me more most my no nor not now of off on once only or other our ours out
over own same she should so some such than that the their theirs them then there these
they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours source sources document documents
according
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_MARKER_WITH_SPACE = re.compile(r" ?\[(\d+)\]")
# A sentence with fewer content words than this makes no checkable claim ("See [2].").
_MIN_WORDS = 3


@dataclass(frozen=True)
class CitationSupport:
    number: int
    # The lowest overlap among the sentences citing this source (1.0 when none makes a claim).
    overlap: float
    supported: bool


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def content_words(text: str) -> set[str]:
    words = [word.lower() for word in _WORD.findall(CITATION.sub(" ", text))]
    kept = [word for word in words if word not in _STOPWORDS and not word.isdigit()]
    return set(_stemmer().stemWords(kept))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in `text`, so markers can be removed in place."""
    spans, start = [], 0
    for boundary in _SENTENCE_END.finditer(text):
        spans.append((start, boundary.start()))
        start = boundary.end()
    spans.append((start, len(text)))
    return [(begin, end) for begin, end in spans if text[begin:end].strip()]


def _overlaps(answer: str, sources: dict[int, str]) -> list[tuple[tuple[int, int], int, float]]:
    """(sentence span, cited number, share of the sentence's words found in that source)."""
    source_words = {number: content_words(text) for number, text in sources.items()}
    found = []
    for begin, end in sentence_spans(answer):
        sentence = answer[begin:end]
        cited = {int(number) for number in CITATION.findall(sentence)} & source_words.keys()
        words = content_words(sentence) if cited else set()
        for number in sorted(cited):
            overlap = (
                len(words & source_words[number]) / len(words) if len(words) >= _MIN_WORDS else 1.0
            )
            found.append(((begin, end), number, overlap))
    return found


def check_citations(
    answer: str, sources: dict[int, str], min_overlap: float
) -> dict[int, CitationSupport]:
    """For each source number cited in `answer`, whether every sentence citing it is supported."""
    lowest: dict[int, float] = {}
    for _, number, overlap in _overlaps(answer, sources):
        lowest[number] = min(lowest.get(number, 1.0), overlap)
    return {
        number: CitationSupport(number, round(overlap, 3), overlap >= min_overlap)
        for number, overlap in lowest.items()
    }


def drop_unsupported(answer: str, sources: dict[int, str], min_overlap: float) -> str:
    """The answer without each `[n]` marker whose sentence source n does not support."""
    unsupported: dict[tuple[int, int], set[int]] = {}
    for span, number, overlap in _overlaps(answer, sources):
        if overlap < min_overlap:
            unsupported.setdefault(span, set()).add(number)
    pieces, position = [], 0
    for (begin, end), numbers in sorted(unsupported.items()):

        def keep(match: re.Match[str], numbers: set[int] = numbers) -> str:
            return "" if int(match.group(1)) in numbers else match.group(0)

        pieces.append(answer[position:begin])
        pieces.append(_MARKER_WITH_SPACE.sub(keep, answer[begin:end]))
        position = end
    pieces.append(answer[position:])
    return "".join(pieces)
