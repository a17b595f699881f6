"""The file types `unstructured` parses for us, registered from one table."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.parsers import Block, ParseOptions, Parser, register
from ingest.parsers.checks import check_docx, check_html, check_pdf, check_text
from ingest.parsers.unstructured_elements import (
    LANGUAGES,
    classify_titles_only,
    to_blocks,
    use_offline_nlp,
)

# A check rejects bad input before parsing, or returns extra arguments for the partitioner
# (`text` replaces the file's own content).
Check = Callable[[Path, ParseOptions], dict[str, Any]]


# extension -> (module under unstructured.partition, function, takes a strategy, check first).
# Only PDF has strategies; "fast" reads the text layer and never runs OCR or layout models.
_PARTITIONERS: dict[str, tuple[str, str, bool, Check]] = {
    ".md": ("md", "partition_md", False, check_text),
    ".markdown": ("md", "partition_md", False, check_text),
    ".txt": ("text", "partition_text", False, check_text),
    ".html": ("html", "partition_html", False, check_html),
    ".htm": ("html", "partition_html", False, check_html),
    ".pdf": ("pdf", "partition_pdf", True, check_pdf),
    ".docx": ("docx", "partition_docx", False, check_docx),
}


def _unstructured_parser(module: str, function: str, takes_strategy: bool, check: Check) -> Parser:
    def parse(path: Path, options: ParseOptions) -> list[Block]:
        extra = check(path, options)
        # Imported on first use: the PDF stack alone costs seconds and hundreds of MB.
        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        use_offline_nlp()
        classify_titles_only()
        if takes_strategy:
            extra["strategy"] = options.strategy
        # A check may hand over the text it prepared (HTML without navigation) instead.
        source = {} if "text" in extra else {"filename": str(path)}
        return to_blocks(partition(**source, languages=LANGUAGES, **extra))

    parse.__name__ = f"parse_{module}"
    return parse


for _extension, _spec in _PARTITIONERS.items():
    register(_extension)(_unstructured_parser(*_spec))
