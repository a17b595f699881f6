"""Checks a gold set against the documents it is about, as the appliance parses them.

Each line's expected source must be exactly one file under ROOT, and its expected answer must be
in that file's parsed text (case and runs of white space ignored, as `appliance eval` compares
answers). A gold line that fails this cannot be scored fairly, so the script names it and exits 1.

    .venv/bin/python eval/verify_gold.py eval/postgresql.jsonl /usr/share/doc/postgresql-doc-15/html
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cache
from pathlib import Path

from ingest.parsers import ParseOptions, parser_for


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


@cache
def parsed_text(path: Path) -> str:
    blocks = parser_for(path)(path, ParseOptions())
    return _normal(" ".join(block.text for block in blocks))


def problems(gold: Path, root: Path) -> list[str]:
    files = [path for path in root.rglob("*") if path.is_file()]
    found = []
    for number, line in enumerate(gold.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        expected = item["expected_source"].strip("/")
        matches = [
            path for path in files if str(path).endswith("/" + expected) or str(path) == expected
        ]
        if len(matches) != 1:
            found.append(f"line {number}: {expected!r} names {len(matches)} files under {root}")
            continue
        answer = item.get("expected_answer")
        if answer and _normal(answer) not in parsed_text(matches[0]):
            found.append(f"line {number}: {answer!r} is not in the parsed text of {expected}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold", type=Path)
    parser.add_argument("root", type=Path, help="the folder the gold set's documents are in")
    args = parser.parse_args()
    found = problems(args.gold, args.root)
    for problem in found:
        print(problem)
    lines = sum(1 for line in args.gold.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"{lines - len(found)} of {lines} lines verified")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
