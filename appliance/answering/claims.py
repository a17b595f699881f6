"""Factual claims in an answer (numbers with units, identifiers, quoted strings), checked
against the passages the model was given.

A small model writes fluent sentences around invented defaults, limits and setting names; those
are the words an engineer acts on. So the check looks at exactly those words, not at meaning: a
number is supported when a passage states the same quantity (4 MB, 4MB, 4096 kB and "four
megabytes" are one quantity; 4 GB is not), an identifier (`work_mem`, `--no-owner`,
/etc/apt/sources.list, ThreadPoolExecutor, python3) when a passage contains it, a quoted string
when a passage contains it word for word. What the question itself says counts as given. Plain
prose ("the server restarts"), however wrong, is not judged here: the citation check is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from appliance.answering.citation_check import content_words, sentence_spans

ClaimKind = Literal["number", "identifier", "quote"]
# Written right after an unsupported claim that is shown anyway (answering.unsupported: flag).
FLAG = " (⚠ not in the sources)"

# Units a quantity may carry, with the factor to its dimension's base unit. kB/MB/GB are
# ambiguous (PostgreSQL means 1024, most prose 1000): a claim matches either reading.
_SIZE_DECIMAL = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}
_SIZE_BINARY = {"kb": 2**10, "mb": 2**20, "gb": 2**30, "tb": 2**40}
_UNITS: dict[str, tuple[str, float]] = {
    "%": ("percent", 1),
    "percent": ("percent", 1),
    "byte": ("bytes", 1),
    "bytes": ("bytes", 1),
    "kib": ("bytes", 2**10),
    "mib": ("bytes", 2**20),
    "gib": ("bytes", 2**30),
    "tib": ("bytes", 2**40),
    "kilobyte": ("bytes", 1e3),
    "kilobytes": ("bytes", 1e3),
    "megabyte": ("bytes", 1e6),
    "megabytes": ("bytes", 1e6),
    "gigabyte": ("bytes", 1e9),
    "gigabytes": ("bytes", 1e9),
    "terabyte": ("bytes", 1e12),
    "terabytes": ("bytes", 1e12),
    "µs": ("seconds", 1e-6),
    "microsecond": ("seconds", 1e-6),
    "microseconds": ("seconds", 1e-6),
    "ms": ("seconds", 1e-3),
    "millisecond": ("seconds", 1e-3),
    "milliseconds": ("seconds", 1e-3),
    "s": ("seconds", 1),
    "sec": ("seconds", 1),
    "secs": ("seconds", 1),
    "second": ("seconds", 1),
    "seconds": ("seconds", 1),
    "min": ("seconds", 60),
    "mins": ("seconds", 60),
    "minute": ("seconds", 60),
    "minutes": ("seconds", 60),
    "h": ("seconds", 3600),
    "hr": ("seconds", 3600),
    "hrs": ("seconds", 3600),
    "hour": ("seconds", 3600),
    "hours": ("seconds", 3600),
    "d": ("seconds", 86400),
    "day": ("seconds", 86400),
    "days": ("seconds", 86400),
    "week": ("seconds", 604800),
    "weeks": ("seconds", 604800),
    "month": ("months", 1),
    "months": ("months", 1),
    "year": ("months", 12),
    "years": ("months", 12),
    "hz": ("hertz", 1),
    "khz": ("hertz", 1e3),
    "mhz": ("hertz", 1e6),
    "ghz": ("hertz", 1e9),
}
_SIZE_UNITS = set(_SIZE_DECIMAL)
NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "hundred": 100,
    "thousand": 1000,
}
_UNIT_PATTERN = "|".join(sorted((re.escape(unit) for unit in _UNITS), key=len, reverse=True))
_SIZE_PATTERN = "|".join(_SIZE_UNITS)
_ALL_UNITS = rf"(?:{_UNIT_PATTERN}|{_SIZE_PATTERN})"
# A number, then optionally (glued, or after a space or hyphen) a unit that ends a word.
_QUANTITY = re.compile(
    rf"(?<![\w.,/:-])(?P<value>-?(?:\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?))"
    rf"(?:[\s-]?(?P<unit>{_ALL_UNITS})(?!\w))?(?![\w.:/]*\w)",
    re.IGNORECASE,
)
# "5-10 seconds": a range is two numbers.
_RANGE_DASH = re.compile(r"(?<=\d)[-–](?=\d)")
_WORD_QUANTITY = re.compile(
    rf"\b(?P<value>{'|'.join(NUMBER_WORDS)})[\s-](?P<unit>{_ALL_UNITS})\b", re.IGNORECASE
)
# A run of non-space characters, the unit an identifier lives in.
_TOKEN = re.compile(r"\S+")
_EDGE = "\"'“”‘’()[]{}<>,;:!?*"
_CODE_SPAN = re.compile(r"`([^`\n]{1,200})`")
_QUOTED = re.compile(r"[\"“]([^\"“”\n]{1,120})[\"”]")
_CITATION_MARK = re.compile(r"\[\d+\]")
_LIST_NUMBER = re.compile(r"(?m)^\s*\d+[.)]\s")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]")
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
# Most identifiers in prose are one of these shapes; a plain word is none of them.
_IDENTIFIER_SHAPES = (
    re.compile(r"^--?[A-Za-z][\w-]*(=\S*)?$"),  # --no-owner, -f, --port=5432
    # Paths: absolute, or relative with a file name or two folders ("and/or" is not one).
    re.compile(r"^(~|\.{1,2})?/[\w.@+-]+(/[\w.@+*-]*)*/?$"),
    re.compile(r"^[\w.-]+(/[\w.@+*-]+)*/[\w@+-]*\.[\w]+$|^[\w.-]+/[\w.@+-]+/[\w.@+*/-]*$"),
    re.compile(r"^[A-Za-z_]\w*_\w+$"),  # work_mem, max_connections
    re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_]\w*)+(\(\))?$"),  # os.path.join, sources.list
    re.compile(r"^[A-Za-z_]\w*\(\)$"),  # urlopen()
    re.compile(r"^v?\d+(\.\d+){2,}$"),  # versions: 3.11.2
)
_PLURAL_ACRONYM = re.compile(r"^[A-Z]{2,}s$")  # APIs, URLs: prose, not identifiers


@dataclass(frozen=True)
class Claim:
    """One checkable statement in an answer: where it is, what kind, and whether it holds."""

    text: str
    kind: ClaimKind
    start: int
    end: int
    supported: bool

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "kind": self.kind, "supported": self.supported}


@dataclass(frozen=True)
class _Quantity:
    value: float
    dimension: str | None  # None: a bare number
    bases: frozenset[float]  # the value in its dimension's base unit, under each reading


def _number(text: str) -> float:
    return float(NUMBER_WORDS.get(text.lower(), text.replace(",", "")))


def _quantity(value: str, unit: str | None) -> _Quantity:
    number = _number(value)
    if not unit:
        return _Quantity(number, None, frozenset())
    key = unit.lower()
    if key in _SIZE_UNITS:
        bases = {number * _SIZE_DECIMAL[key], number * _SIZE_BINARY[key]}
        return _Quantity(number, "bytes", frozenset(round(base, 6) for base in bases))
    dimension, factor = _UNITS[key]
    return _Quantity(number, dimension, frozenset({round(number * factor, 6)}))


def _quantities(text: str) -> Iterable[tuple[int, int, _Quantity]]:
    text = _RANGE_DASH.sub(" ", text)
    for match in _QUANTITY.finditer(text):
        yield match.start(), match.end(), _quantity(match["value"], match["unit"])
    for match in _WORD_QUANTITY.finditer(text):
        yield match.start(), match.end(), _quantity(match["value"], match["unit"])


# Passage sentences, for the context a quantity is stated in.
_PASSAGE_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_NUMBER_WORD = re.compile(rf"\b(?:{'|'.join(NUMBER_WORDS)})\b", re.IGNORECASE)


def _context_words(text: str) -> set[str]:
    """What a sentence is about: its content words, less units (every duration says "hour")."""
    return content_words(text) - _unit_stems()


@lru_cache(maxsize=1)
def _unit_stems() -> frozenset[str]:
    return frozenset(content_words(" ".join(_UNITS)))


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


class Evidence:
    """What the passages (and the question) state, indexed once for every claim of an answer.

    A quantity counts as stated only by a passage sentence that shares a word with the claim's
    own sentence or the question: "within one hour" (reporting a lost laptop) does not support
    "a VPN session lasts 1 hour", while "A VPN session expires after 11 hours" would support 11.
    """

    def __init__(self, passages: Iterable[str], question: str = "") -> None:
        passages = list(passages)
        self._text = " \n ".join(_normal(text) for text in [*passages, question])
        self.question_words = _context_words(question)
        # Quantities by value: the words of each passage sentence stating it (None: the
        # question states it, which supports it whatever the context).
        self._bare: dict[float, list[frozenset[str] | None]] = {}
        self._measured: dict[tuple[str, float], list[frozenset[str] | None]] = {}
        for sentence in (part for text in passages for part in _PASSAGE_SENTENCE.split(text)):
            self._index(sentence, frozenset(_context_words(sentence)))
        self._index(question, None)

    def _index(self, text: str, words: frozenset[str] | None) -> None:
        for _, _, quantity in _quantities(text):
            self._bare.setdefault(quantity.value, []).append(words)
            for base in quantity.bases:
                self._measured.setdefault((quantity.dimension or "", base), []).append(words)
        for match in _NUMBER_WORD.finditer(text):
            self._bare.setdefault(float(NUMBER_WORDS[match.group().lower()]), []).append(words)

    def states_quantity(self, quantity: _Quantity, context: set[str]) -> bool:
        """Whether a passage sentence sharing a word with `context` states this quantity."""
        if quantity.dimension is None:
            found = self._bare.get(quantity.value, [])
        else:
            found = [
                words
                for base in quantity.bases
                for words in self._measured.get((quantity.dimension, base), [])
            ]
        return any(words is None or words & context for words in found)

    def contains(self, text: str) -> bool:
        needle = _normal(text)
        if not needle:
            return True
        # Whole words only: `mem` is not supported by `work_mem`.
        pattern = rf"(?<![\w-]){re.escape(needle)}(?![\w-]|\.\w)"
        if re.search(pattern, self._text):
            return True
        return needle in self._text and not needle[-1].isalnum()


@functools.lru_cache(maxsize=65_536)
def _identifier(token: str) -> str | None:
    """The identifier a whitespace-separated token is, with prose punctuation taken off.
    Cached: the claim guard reads a sentence's words again as each token of it arrives."""
    word = token.strip(_EDGE).rstrip(".")
    if word.endswith("()"):
        word = word[:-2]
        if not word:
            return None
        return word if re.fullmatch(r"[\w.]+", word) else None
    if re.fullmatch(r"v?\d+(\.\d+){2,}", word):
        return word
    if len(word) < 2 or not _LETTER.search(word) or _PLURAL_ACRONYM.match(word):
        return None
    if any(shape.match(word) for shape in _IDENTIFIER_SHAPES):
        # A sentence-final "e.g." or "i.e." is prose, not a dotted name.
        return None if re.fullmatch(r"(?:[a-z]\.)+[a-z]?", word, re.IGNORECASE) else word
    if _DIGIT.search(word) and re.fullmatch(r"[A-Za-z][\w.-]*\d[\w.-]*|[A-Za-z]+\d+", word):
        return word  # python3, sha256sum, v2, ext4
    if _CAMEL.search(word) and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", word):
        return word  # ThreadPoolExecutor, PostgreSQL
    return None


def find_claims(answer: str) -> list[tuple[int, int, ClaimKind, object]]:
    """(start, end, kind, what) of every claim in `answer`, in order, none overlapping."""
    masked = _CITATION_MARK.sub(lambda match: " " * len(match.group()), answer)
    masked = _LIST_NUMBER.sub(lambda match: " " * len(match.group()), masked)
    found: list[tuple[int, int, ClaimKind, object]] = []
    taken = [False] * len(answer)

    def free(start: int, end: int) -> bool:
        return not any(taken[start:end])

    def take(start: int, end: int, kind: ClaimKind, what: object) -> None:
        found.append((start, end, kind, what))
        for index in range(start, end):
            taken[index] = True

    for match in _CODE_SPAN.finditer(masked):
        take(match.start(), match.end(), "quote", match.group(1))
    for match in _QUOTED.finditer(masked):
        if free(match.start(), match.end()) and len(match.group(1).split()) <= 12:
            take(match.start(), match.end(), "quote", match.group(1))
    for match in _TOKEN.finditer(masked):
        word = _identifier(match.group())
        if word and free(match.start(), match.end()):
            offset = match.group().find(word)
            start = match.start() + max(offset, 0)
            take(start, start + len(word), "identifier", word)
    for start, end, quantity in _quantities(masked):
        if free(start, end):
            take(start, end, "number", quantity)
    return sorted(found, key=lambda claim: claim[0])


def check_claims(answer: str, evidence: Evidence) -> list[Claim]:
    """Every claim of `answer`, each marked supported or not by `evidence`."""
    claims = []
    spans = sentence_spans(answer)
    for start, end, kind, what in find_claims(answer):
        if kind == "number":
            assert isinstance(what, _Quantity)
            sentence = next(
                (answer[b:e] for b, e in spans if b <= start < e), answer[max(0, start - 200) : end]
            )
            context = _context_words(sentence) | evidence.question_words
            supported = evidence.states_quantity(what, context)
        elif kind == "quote":
            assert isinstance(what, str)
            supported = evidence.contains(what) or _code_parts_given(what, evidence)
        else:
            assert isinstance(what, str)
            supported = evidence.contains(what)
        claims.append(Claim(answer[start:end], kind, start, end, supported))
    return claims


def _code_parts_given(code: str, evidence: Evidence) -> bool:
    """A code span the passages hold piece by piece (`apt-get install -y`) states nothing new."""
    parts = [part.strip(_EDGE) for part in code.split()]
    return len(parts) > 1 and all(evidence.contains(part) for part in parts if part)


def shown_unflagged(text: str, evidence: Evidence) -> list[Claim]:
    """The unsupported claims of a finished answer that a reader sees without a flag after
    them (the flag marker is what answering.unsupported=flag writes; claim_guard.FLAG)."""
    return [
        claim
        for claim in check_claims(text, evidence)
        if not claim.supported and not text[claim.end :].startswith(FLAG)
    ]
