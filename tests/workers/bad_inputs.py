"""Builds one file of each kind of bad input, with the words its error must contain."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from pypdf import PdfWriter

from tests.conftest import CORPUS

MB = 2**20


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def zip_bomb_docx() -> bytes:
    """A real DOCX skeleton plus 300 MB of zeros that compress to a few hundred KB."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(CORPUS / "expense-policy.docx") as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb,
    ):
        for item in source.infolist():
            bomb.writestr(item, source.read(item))
        with bomb.open("word/media/padding.bin", "w") as padding:
            block = b"\0" * MB
            for _ in range(300):
                padding.write(block)
    return buffer.getvalue()


def write_bad_inputs(folder: Path) -> dict[str, str]:
    """File name -> the words its failure message must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    docx = (CORPUS / "expense-policy.docx").read_bytes()
    files: dict[str, tuple[bytes, str]] = {
        "corrupt.pdf": (b"%PDF-1.7\n1 0 obj << >> garbage", "is not a valid PDF"),
        "encrypted.pdf": (encrypted_pdf(), "is password-protected"),
        "empty.txt": (b"", "is empty"),
        "binary.txt": (bytes(range(256)) * 64, "contains binary data, not text"),
        "too-large.txt": (b"a" * (61 * MB), "over the 60 MB limit"),
        "bomb.docx": (zip_bomb_docx(), "may be a zip bomb"),
        "slides.pptx": (b"PK\x03\x04 not really slides", "are not supported"),
        "truncated.docx": (docx[: len(docx) // 2], "not a valid DOCX file"),
        "one-line.txt": (b"word " * (10 * MB), "has a single line of 50.0 MB"),
    }
    for name, (content, _) in files.items():
        (folder / name).write_bytes(content)
    return {name: words for name, (_, words) in files.items()}
