"""Release notes ("What's New In Python 3.11", "E.1. Release 15.5", a changelog) restate in one
sentence what a reference page explains, and often outrank it. Unless the question asks about
change (new, changed, added, since, version ...), their passages count for less in the fusion.

Measured with bench/answers.py's sets (hybrid, top 10): Python hit@1 0.733 -> 0.822 at 0.8, its
hit@5 and answers unchanged; PostgreSQL, the Debian handbook and the samples unchanged.
"""

from __future__ import annotations

import re

_TITLE = re.compile(
    r"^(?:(?:[A-Z]|\d+)(?:\.\d+)*\.?\s+)?"  # a section number: "E.1. Release 15.5"
    r"(?:what[’']?s new|release notes?\b|release \d|change ?log|changes in\b|news\b)",
    re.IGNORECASE,
)
_ASKS_ABOUT_CHANGE = re.compile(
    r"\b(?:new|newer|changed?|changes|releases?|released|versions?|added|since|removed|"
    r"deprecated|upgrad\w*)\b",
    re.IGNORECASE,
)


def is_release_notes(title: str | None) -> bool:
    return bool(title) and _TITLE.match(title.strip()) is not None


def asks_about_change(question: str) -> bool:
    return _ASKS_ABOUT_CHANGE.search(question) is not None
