"""Document parsers, one file per type, registered by file extension."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import UnsupportedFileType


@dataclass(frozen=True)
class Block:
    """One structural element of a parsed document: a heading, paragraph, list item or table."""

    text: str
    category: str
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True)
class ParseOptions:
    strategy: str = "fast"
    max_line_bytes: int = 2**20
    max_unpacked_bytes: int = 200 * 2**20


Parser = Callable[[Path, ParseOptions], list[Block]]

_PARSERS: dict[str, Parser] = {}
_MODULES = ("unstructured_parsers",)


def register(*extensions: str) -> Callable[[Parser], Parser]:
    def decorate(parser: Parser) -> Parser:
        for extension in extensions:
            _PARSERS[extension] = parser
        return parser

    return decorate


def _load_all() -> None:
    for module in _MODULES:
        importlib.import_module(f"ingest.parsers.{module}")


def supported_extensions() -> list[str]:
    _load_all()
    return sorted(_PARSERS)


def parser_for(path: Path) -> Parser:
    _load_all()
    extension = path.suffix.lower()
    if extension not in _PARSERS:
        known = ", ".join(sorted(_PARSERS))
        raise UnsupportedFileType(
            f"{path.name}: files of type '{extension or 'without extension'}' are not supported "
            f"(supported: {known})"
        )
    return _PARSERS[extension]
