"""A gold set: JSON lines of questions, the file that answers each, and optionally the answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError

_FIELDS = {"question", "expected_source", "expected_answer"}


class GoldSetInvalid(ApplianceError):
    """A gold file that cannot be read, or a line of it that is not a gold question."""

    status_code = 422


@dataclass(frozen=True)
class GoldQuestion:
    question: str
    # A file name or a path suffix, matched whole path components at a time.
    expected_source: str
    expected_answer: str | None = None
    line: int = 0

    def is_source(self, path: str) -> bool:
        """Whether `path` is the expected source; `bisect.txt` does not match `git-bisect.txt`."""
        expected = self.expected_source.strip("/")
        path = path.replace("\\", "/")
        return path == expected or path.endswith("/" + expected)


def load_gold(path: Path) -> list[GoldQuestion]:
    """Every question of a gold file; the first bad line stops it with its number and why."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise GoldSetInvalid(f"no gold file at {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise GoldSetInvalid(f"cannot read the gold file {path}: {error}") from None
    questions = [
        _parse(text, f"{path} line {number}", number)
        for number, text in enumerate(lines, 1)
        if text.strip()
    ]
    if not questions:
        raise GoldSetInvalid(f"{path} has no questions: write one JSON object per line")
    return questions


def _parse(text: str, where: str, number: int) -> GoldQuestion:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise GoldSetInvalid(f"{where} is not JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(record, dict):
        raise GoldSetInvalid(f'{where} is not a JSON object: write {{"question": ...}}')
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise GoldSetInvalid(
            f"{where} has unknown field(s) {', '.join(unknown)}; "
            f"the fields are {', '.join(sorted(_FIELDS))}"
        )
    fields = {name: _text(record, name, where) for name in _FIELDS}
    for required in ("question", "expected_source"):
        if not fields[required]:
            raise GoldSetInvalid(f"{where} needs a non-empty {required!r}")
    return GoldQuestion(
        question=fields["question"] or "",
        expected_source=fields["expected_source"] or "",
        expected_answer=fields["expected_answer"] or None,
        line=number,
    )


def _text(record: dict, name: str, where: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GoldSetInvalid(f"{where}: {name!r} must be a string, not {type(value).__name__}")
    return value.strip()
