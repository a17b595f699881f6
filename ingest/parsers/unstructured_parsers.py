"""The file types `unstructured` parses for us, registered from one table."""

from __future__ import annotations

import importlib
from pathlib import Path

from ingest.parsers import Block, Parser, register
from ingest.parsers.unstructured_elements import LANGUAGES, to_blocks, use_offline_nlp

# extension -> (module under unstructured.partition, function, whether it takes a strategy).
# Only PDF has strategies; "fast" reads the text layer and never runs OCR or layout models.
_PARTITIONERS: dict[str, tuple[str, str, bool]] = {
    ".md": ("md", "partition_md", False),
    ".markdown": ("md", "partition_md", False),
    ".txt": ("text", "partition_text", False),
    ".html": ("html", "partition_html", False),
    ".htm": ("html", "partition_html", False),
    ".pdf": ("pdf", "partition_pdf", True),
    ".docx": ("docx", "partition_docx", False),
}


def _unstructured_parser(module: str, function: str, takes_strategy: bool) -> Parser:
    def parse(path: Path, strategy: str) -> list[Block]:
        # Imported on first use: the PDF stack alone costs seconds and hundreds of MB.
        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        use_offline_nlp()
        options = {"strategy": strategy} if takes_strategy else {}
        return to_blocks(partition(filename=str(path), languages=LANGUAGES, **options))

    parse.__name__ = f"parse_{module}"
    return parse


for _extension, (_module, _function, _takes_strategy) in _PARTITIONERS.items():
    register(_extension)(_unstructured_parser(_module, _function, _takes_strategy))
