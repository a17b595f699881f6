"""Checks that run before a document is parsed, so bad input fails with a sentence, not a trace.

Each check raises a DocumentRejected error, or returns extra arguments for the partitioner
(the text encoding it detected, for instance).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from appliance.errors import DocumentUnreadable, EmptyDocument
from ingest.parsers import ParseOptions

_SNIFF_BYTES = 64 * 1024
# Control bytes other than tab, newline, form feed and carriage return: not in any text file.
_BINARY_BYTES = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x0b"


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MB"


def detect_encoding(path: Path) -> str:
    """utf-8 when it decodes as such, else the encoding charset-normalizer recognises."""
    head = path.read_bytes()[:_SNIFF_BYTES]
    if not head.strip():
        raise EmptyDocument(f"{path.name} is empty")
    binary = sum(byte in _BINARY_BYTES for byte in head)
    if b"\x00" in head or binary > len(head) // 100:
        raise DocumentUnreadable(
            f"{path.name} contains binary data, not text: is it a different kind of file "
            f"renamed to {path.suffix}?"
        )
    content = path.read_bytes()
    try:
        content.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(content[: 4 * _SNIFF_BYTES]).best()
    if best is None:
        raise DocumentUnreadable(
            f"{path.name} is not UTF-8 and its text encoding could not be recognised"
        )
    return best.encoding


def check_text(path: Path, options: ParseOptions) -> dict[str, Any]:
    encoding = detect_encoding(path)
    longest = max((len(line) for line in path.open("rb")), default=0)
    if longest > options.max_line_bytes:
        raise DocumentUnreadable(
            f"{path.name} has a single line of {_mb(longest)} (the limit is "
            f"{_mb(options.max_line_bytes)}, ingest.max_line_mb): this looks like data, not prose"
        )
    return {"encoding": encoding}


def check_html(path: Path, options: ParseOptions) -> dict[str, Any]:
    # Minified HTML is legitimately one long line: only the encoding and binary checks apply.
    # The page is parsed without its navigation, banners and footers (html_cleanup.py).
    from ingest.parsers.html_cleanup import clean_html

    return {"text": clean_html(path.read_bytes(), detect_encoding(path))}


def check_docx(path: Path, options: ParseOptions) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        message = f"{path.name} is not a valid DOCX file (it may be damaged or truncated)"
        raise DocumentUnreadable(message) from error
    if "word/document.xml" not in names:
        raise DocumentUnreadable(f"{path.name} is a zip archive but not a Word document")
    if unpacked > options.max_unpacked_bytes:
        raise DocumentUnreadable(
            f"{path.name} unpacks to {_mb(unpacked)}, over the {_mb(options.max_unpacked_bytes)} "
            "limit (ingest.max_unpacked_mb); it may be a zip bomb"
        )
    return {}


def check_pdf(path: Path, options: ParseOptions) -> dict[str, Any]:
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
    return {}
