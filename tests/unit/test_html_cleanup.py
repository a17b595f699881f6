"""Web pages are parsed without their navigation; their own text, boxed notes included, stays."""

from __future__ import annotations

from pathlib import Path

from ingest.parsers import ParseOptions, parser_for
from ingest.service import document_title

PAGE = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>6.2. APT Commands</title>
<script>var tracking = 1;</script></head><body>
<div id="banner"><a href="/get">Download the ebook</a></div>
<div class="navheader"><table><tr><td>Prev</td><td>Up</td><td>Home</td><td>Next</td></tr></table>
</div>
<nav><ul><li>Chapter 1. Introduction</li><li>Chapter 2. Installation</li></ul></nav>
<div class="sphinxsidebar" role="navigation"><h3>Quick search</h3></div>
<h1>6.2. APT Commands<a class="headerlink" href="#apt">¶</a></h1>
<p>The package list is refreshed with apt update before any installation.</p>
<div class="sidebar"><p class="title">BACK TO BASICS</p>
<p>A mirror keeps a copy of the Debian archive close to you.</p></div>
<header><p>site header with links</p></header>
<footer>Copyright 2022 The Authors. Built with Sphinx.</footer>
<ul class="docnav"><li class="previous">Prev</li><li class="next">Next</li></ul>
</body></html>"""


def test_navigation_banners_and_footers_are_left_out(tmp_path: Path) -> None:
    page = tmp_path / "sect.apt-get.html"
    page.write_text(PAGE, encoding="utf-8")
    blocks = parser_for(page)(page, ParseOptions())
    text = "\n".join(block.text for block in blocks)
    for boilerplate in (
        "Prev", "Next", "Home", "Download the ebook", "Quick search", "Chapter 2",
        "¶", "tracking", "Copyright", "site header",
    ):  # fmt: skip
        assert boilerplate not in text, boilerplate
    assert "refreshed with apt update" in text
    # DocBook's boxed "sidebar" note is the page's own text, not navigation.
    assert "A mirror keeps a copy of the Debian archive" in text
    assert document_title(blocks, page) == "6.2. APT Commands"


def test_a_page_without_a_heading_is_titled_by_its_file_name(tmp_path: Path) -> None:
    page = tmp_path / "release-notes.html"
    page.write_text("<html><body><p>Version 2 fixes the upload limit.</p></body></html>")
    blocks = parser_for(page)(page, ParseOptions())
    assert document_title(blocks, page) == "release-notes"
