"""Ranking and latency metrics as pure functions over one ranking's relevance flags.

A ranking is the retrieved passages best first, each `True` when it comes from the expected
source (binary relevance). Averaging over questions is the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_at(relevance: Sequence[bool], k: int) -> float:
    """1.0 when a relevant passage is among the first `k`."""
    return 1.0 if any(relevance[:k]) else 0.0


def reciprocal_rank(relevance: Sequence[bool]) -> float:
    """1 / the rank of the first relevant passage; 0.0 when none was retrieved."""
    for rank, relevant in enumerate(relevance, 1):
        if relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(relevance: Sequence[bool], k: int, relevant_total: int | None = None) -> float:
    """Normalised discounted cumulative gain of the first `k`, binary gains.

    The ideal ranking puts `relevant_total` relevant passages first; unknown, it is the number
    the ranking holds (the ideal reordering of what was retrieved).
    """
    gains = sum(1.0 / math.log2(rank + 1) for rank, hit in enumerate(relevance[:k], 1) if hit)
    ideal_count = min(k, sum(relevance) if relevant_total is None else relevant_total)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, ideal_count + 1))
    return gains / ideal if ideal else 0.0


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 to 100), interpolated linearly between ranks as numpy does."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
