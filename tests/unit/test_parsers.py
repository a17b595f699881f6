"""Every supported type parses offline, keeping page numbers and section titles."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.errors import UnsupportedFileType
from ingest.parsers import ParseOptions, parser_for
from tests.conftest import CORPUS, ROOT

SAMPLES = sorted(CORPUS.iterdir())

_PARSE_ALL = """
import json, sys
from pathlib import Path
from ingest.parsers import ParseOptions, parser_for
out = {}
for name in sys.argv[1:]:
    path = Path(name)
    blocks = parser_for(path)(path, ParseOptions())
    out[path.name] = [[b.text, b.page, b.section] for b in blocks]
print(json.dumps(out))
"""


def _can_drop_network() -> bool:
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def test_sample_corpus_covers_every_type() -> None:
    assert {path.suffix for path in SAMPLES} == {".md", ".txt", ".html", ".pdf", ".docx"}


@pytest.mark.skipif(not _can_drop_network(), reason="needs `unshare -rn` (user namespaces)")
def test_every_type_parses_with_no_network_at_all() -> None:
    """In a network namespace with no interfaces, any download attempt would fail the parse."""
    result = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", _PARSE_ALL, *map(str, SAMPLES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(parsed) == {path.name for path in SAMPLES}
    assert all(parsed.values()), "every sample yields text"
    pdf = parsed["incident-response.pdf"]
    bridge = [block for block in pdf if "4471" in block[0]]
    assert bridge and bridge[0][1] == 2, "the bridge extension is on page 2 of the PDF"
    docx_sections = {block[2] for block in parsed["expense-policy.docx"]}
    assert "Hotels" in docx_sections
    html_sections = {block[2] for block in parsed["deploy-runbook.html"]}
    assert "Rolling back" in html_sections


def test_parsing_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for path in SAMPLES:
        assert parser_for(path)(path, ParseOptions())
    assert attempts == []


def test_unsupported_type_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "slides.pptx"
    path.write_bytes(b"not really")
    with pytest.raises(UnsupportedFileType, match=r"'\.pptx' are not supported"):
        parser_for(path)


HEADED_TEXT = """Remote Access Policy

Scope

This policy applies to every employee and contractor who connects to the company network
from outside an office, on a laptop, a phone or any other device.

Session limits

Sessions expire after eleven hours.

Idle sessions are disconnected after 45 minutes without traffic, and the client asks for
the hardware key again before it reconnects to any internal service.

LOST DEVICES

Report a lost laptop to the service desk within one hour.
"""


def _titled(blocks: list) -> list[tuple[str, bool, int | None, str | None]]:
    return [(b.text, b.category == "Title", b.page, b.section) for b in blocks]


def test_titles_and_sections_match_unstructureds_full_classification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skipping the narrative-text parse where no Title can result changes no Title."""
    from unstructured.partition import text, text_type

    headed = tmp_path / "headed.txt"
    headed.write_text(HEADED_TEXT, encoding="utf-8")
    paths = [headed, CORPUS / "vpn-policy.txt", CORPUS / "incident-response.pdf"]
    fast = [parser_for(path)(path, ParseOptions()) for path in paths]
    monkeypatch.setattr(text, "is_possible_narrative_text", text_type.is_possible_narrative_text)
    full = [parser_for(path)(path, ParseOptions()) for path in paths]
    assert {b.section for b in full[0]} >= {"Scope", "LOST DEVICES"}
    assert [_titled(blocks) for blocks in fast] == [_titled(blocks) for blocks in full]
