"""`appliance eval` as a user runs it: ingest samples/corpus, score a gold set, retrieval only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
GOLD = [
    {
        "question": "What phone extension do I dial for the incident bridge?",
        "expected_source": "incident-response.pdf",
    },
    {
        "question": "How much may I spend on a hotel per night?",
        "expected_source": "expense-policy.docx",
    },
    {
        "question": "How long does a VPN session last before it expires?",
        "expected_source": "vpn-policy.txt",
    },
    {
        "question": "What is the shared build cache server called?",
        "expected_source": "corpus/onboarding.md",
        "expected_answer": "kestrel",
    },
]


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    environ |= {"APPLIANCE_DATA_DIR": str(data_dir), "APPLIANCE_PROFILES": "embedded,test"}
    return subprocess.run(
        [APPLIANCE, *args], capture_output=True, text=True, env=environ, cwd=ROOT, timeout=600
    )


def _unwrapped(text: str) -> str:
    """Rich wraps messages at the terminal's width; the test reads them as one line."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    ingested = _cli(root / "data", "ingest", str(CORPUS), "--json")
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    gold = root / "gold.jsonl"
    gold.write_text("".join(json.dumps(line) + "\n" for line in GOLD))
    return root / "data", gold


def test_eval_scores_every_mode_and_finds_each_source_in_the_top_five(
    indexed: tuple[Path, Path],
) -> None:
    data, gold = indexed
    result = _cli(data, "eval", str(gold), "--retrieval-only", "--compare", "hybrid,bm25", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert [run["mode"] for run in report["runs"]] == ["hybrid", "bm25"]
    hybrid = report["runs"][0]
    assert hybrid["metrics"]["hit@5"] == 1.0
    assert hybrid["questions"] == 4 and hybrid["generated"] is False
    assert hybrid["metrics"]["answer_contains"] is None
    assert hybrid["metrics"]["retrieval_p95_ms"] > 0
    assert report["gate"] == {"passed": True, "failures": []}


def test_the_gate_exits_1_below_a_minimum_and_a_bad_gold_line_exits_2(
    indexed: tuple[Path, Path],
) -> None:
    data, gold = indexed
    gated = _cli(data, "eval", str(gold), "--retrieval-only", "--min", "hit@1=1.01")
    assert gated.returncode == 1, gated.stderr[-3000:]
    assert "hit@1" in gated.stdout and "below the minimum" in _unwrapped(gated.stderr)

    bad = gold.with_name("bad.jsonl")
    bad.write_text(gold.read_text() + '{"question": "no source"}\n')
    refused = _cli(data, "eval", str(bad), "--retrieval-only")
    assert refused.returncode == 2
    assert "line 5 needs a non-empty 'expected_source'" in _unwrapped(refused.stderr)
