"""Document ids follow the path, versions follow the content, chunk ids combine both."""

from __future__ import annotations

from pathlib import Path

from appliance.domain import chunk_id
from ingest.service import SourceFile, document_id


def test_document_id_is_stable_per_path_and_distinct_between_paths(tmp_path: Path) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("same")
    second.write_text("same")
    assert document_id(first) == document_id(tmp_path / "." / "a.txt")
    assert document_id(first) != document_id(second)


def test_version_changes_with_content_only(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("one")
    before = SourceFile.read(path)
    path.write_text("one")
    assert SourceFile.read(path).version == before.version
    path.write_text("two")
    after = SourceFile.read(path)
    assert after.version != before.version
    assert after.doc_id == before.doc_id
    assert len(after.version) == 16


def test_chunk_id_format() -> None:
    assert chunk_id("abc", "v1", 3) == "abc:v1:3"
