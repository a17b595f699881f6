"""Ranking metrics, percentiles, gold-file parsing and the gate, on hand-made rankings."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from appliance.domain import Answer, Hit
from appliance.evaluation.gold import GoldQuestion, GoldSetInvalid, load_gold
from appliance.evaluation.metrics import hit_at, ndcg_at, percentile, reciprocal_rank
from appliance.evaluation.runner import EvalRun, QuestionResult, gate, parse_threshold, run_gold

F, T = False, True


def test_hit_at_k_looks_only_at_the_first_k() -> None:
    ranking = [F, F, T, F]
    assert hit_at(ranking, 1) == 0.0
    assert hit_at(ranking, 2) == 0.0
    assert hit_at(ranking, 3) == 1.0
    assert hit_at([], 5) == 0.0


def test_reciprocal_rank_is_one_over_the_first_relevant_rank() -> None:
    assert reciprocal_rank([T, T]) == 1.0
    assert reciprocal_rank([F, F, F, T, T]) == 0.25
    assert reciprocal_rank([F, F]) == 0.0


def test_ndcg_discounts_by_log_rank_against_the_ideal_order() -> None:
    assert ndcg_at([T, F, F], 10) == 1.0
    # One relevant passage at rank 3: 1/log2(4) against the ideal 1/log2(2).
    assert ndcg_at([F, F, T], 10) == pytest.approx(0.5)
    two = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at([F, T, F, T], 10) == pytest.approx(two)
    # Beyond the cutoff counts for nothing; a known total lowers the score.
    assert ndcg_at([F, F, T], 2) == 0.0
    assert ndcg_at([T, F], 10, relevant_total=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at([F, F], 10) == 0.0


def test_percentiles_interpolate_like_numpy() -> None:
    values = [40.0, 10.0, 30.0, 20.0, 50.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 95) == pytest.approx(48.0)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def _result(relevance: list[bool], contains: bool | None = None) -> QuestionResult:
    return QuestionResult("q", "a.txt", relevance, [], 0.01, answer_contains=contains)


def test_a_run_averages_over_questions_and_leaves_unmeasured_ones_empty() -> None:
    run = EvalRun("dense", 10, False, [_result([T]), _result([F, T]), _result([F] * 10)])
    measured = run.metrics()
    assert measured["hit@1"] == pytest.approx(1 / 3)
    assert measured["hit@5"] == pytest.approx(2 / 3)
    assert measured["mrr"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert measured["answer_contains"] is None and measured["abstention"] is None
    assert measured["retrieval_p50_ms"] == pytest.approx(10.0)


def test_the_gate_names_what_falls_short() -> None:
    measured = {"hit@1": 0.5, "hit@5": 0.9, "answer_contains": None}
    assert gate(measured, [parse_threshold("hit@5=0.9")]) == []
    failures = gate(measured, [parse_threshold("HIT@1=0.6"), parse_threshold("answer-contains=0")])
    assert failures[0] == "hit@1 is 0.500, below the minimum 0.6"
    assert "not measured" in failures[1]
    with pytest.raises(ValueError, match="METRIC=VALUE"):
        parse_threshold("p95=3")
    with pytest.raises(ValueError, match="not a number"):
        parse_threshold("mrr=high")


def test_a_source_matches_whole_path_components() -> None:
    item = GoldQuestion("q", "git-bisect.txt")
    assert item.is_source("/usr/share/doc/git/html/git-bisect.txt")
    assert item.is_source("git-bisect.txt")
    assert not item.is_source("/docs/git-bisect-lk2009.txt")
    assert not GoldQuestion("q", "bisect.txt").is_source("/docs/git-bisect.txt")
    assert GoldQuestion("q", "html/git-bisect.txt").is_source("/a/html/git-bisect.txt")


def test_gold_lines_load_and_a_bad_line_is_named(tmp_path: Path) -> None:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        '{"question": "Who?", "expected_source": "a.txt"}\n\n'
        '{"question": "What?", "expected_source": "b.txt", "expected_answer": "42"}\n'
    )
    loaded = load_gold(gold)
    assert [item.expected_answer for item in loaded] == [None, "42"]
    assert loaded[1].line == 3

    for line, why in [
        ("not json", "line 2 is not JSON"),
        ('{"question": "Why?"}', "line 2 needs a non-empty 'expected_source'"),
        ('{"question": "Why?", "expected_source": 3}', "must be a string, not int"),
        ('{"question": "Why?", "expected_source": "a", "source": "b"}', "unknown field(s) source"),
        ("[1]", "not a JSON object"),
    ]:
        gold.write_text('{"question": "Who?", "expected_source": "a.txt"}\n' + line + "\n")
        with pytest.raises(GoldSetInvalid, match=re.escape(why)):
            load_gold(gold)
    with pytest.raises(GoldSetInvalid, match="no gold file"):
        load_gold(tmp_path / "missing.jsonl")


def _hit(path: str) -> Hit:
    return Hit(path, "doc", "v1", path, None, None, 0.5, "text")


def test_run_gold_checks_answers_case_blind_and_counts_abstentions() -> None:
    gold = [
        GoldQuestion("Where?", "docs/a.txt", "The Kestrel  Server"),
        GoldQuestion("What?", "b.txt", "nowhere"),
        GoldQuestion("Who?", "c.txt"),
    ]
    rankings = {"Where?": ["x/b.txt", "docs/a.txt"], "What?": ["b.txt"], "Who?": ["a.txt"]}

    def search(question: str, k: int) -> list[Hit]:
        return [_hit(path) for path in rankings[question][:k]]

    def ask(question: str) -> Answer:
        return Answer(question, "It is the kestrel\nserver [1].")

    run = run_gold(gold, "dense", search, ask)
    assert [result.relevance for result in run.results] == [[F, T], [T], [F]]
    assert [result.answer_contains for result in run.results] == [True, False, None]
    measured = run.metrics()
    assert measured["mrr"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert measured["answer_contains"] == 0.5
    assert measured["abstention"] == 0.0  # every answer came from the model
    assert measured["answer_p95_ms"] is not None

    flagged = run_gold(
        gold, "dense", search, lambda question: Answer(question, "-", abstained=True)
    )
    assert flagged.metrics()["abstention"] == 1.0
    assert run_gold(gold, "dense", search).metrics()["answer_p50_ms"] is None
