"""The file types `unstructured` parses for us, registered from one table."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from appliance.errors import DocumentUnreadable
from ingest.parsers import Block, Parser, register
from ingest.parsers.unstructured_elements import LANGUAGES, to_blocks, use_offline_nlp

Check = Callable[[Path], None]


def check_pdf(path: Path) -> None:
    """unstructured returns no elements for a corrupt or encrypted PDF; say which it is."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path, strict=True)
        encrypted = reader.is_encrypted
        pages = len(reader.pages) if not encrypted else 0
    except (PdfReadError, OSError, ValueError) as error:
        message = f"{path.name} is not a valid PDF (it may be damaged): {error}"
        raise DocumentUnreadable(message) from error
    if encrypted:
        raise DocumentUnreadable(f"{path.name} is password-protected; remove the password first")
    if pages == 0:
        raise DocumentUnreadable(f"{path.name} is a PDF with no pages")


# extension -> (module under unstructured.partition, function, takes a strategy, check first).
# Only PDF has strategies; "fast" reads the text layer and never runs OCR or layout models.
_PARTITIONERS: dict[str, tuple[str, str, bool, Check | None]] = {
    ".md": ("md", "partition_md", False, None),
    ".markdown": ("md", "partition_md", False, None),
    ".txt": ("text", "partition_text", False, None),
    ".html": ("html", "partition_html", False, None),
    ".htm": ("html", "partition_html", False, None),
    ".pdf": ("pdf", "partition_pdf", True, check_pdf),
    ".docx": ("docx", "partition_docx", False, None),
}


def _unstructured_parser(
    module: str, function: str, takes_strategy: bool, check: Check | None
) -> Parser:
    def parse(path: Path, strategy: str) -> list[Block]:
        if check:
            check(path)
        # Imported on first use: the PDF stack alone costs seconds and hundreds of MB.
        partition = getattr(importlib.import_module(f"unstructured.partition.{module}"), function)
        use_offline_nlp()
        options = {"strategy": strategy} if takes_strategy else {}
        return to_blocks(partition(filename=str(path), languages=LANGUAGES, **options))

    parse.__name__ = f"parse_{module}"
    return parse


for _extension, _spec in _PARTITIONERS.items():
    register(_extension)(_unstructured_parser(*_spec))
