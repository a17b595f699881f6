"""The activation gate's verdict: a candidate version may not answer worse than the active one.

The measuring (the evaluation harness's gold set run against both versions) is the appliance's;
this module only judges the two numbers, so the rule can be read and tested on its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GateVerdict:
    metric: str
    active: float | None
    candidate: float | None
    max_drop: float
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    metric: str,
    active: dict[str, float | None],
    candidate: dict[str, float | None],
    max_drop: float,
) -> GateVerdict:
    """Passed when the candidate's `metric` is at least the active one's minus `max_drop`.

    A metric either side did not measure fails: a gate that cannot see is closed.
    """
    before, after = active.get(metric), candidate.get(metric)
    if before is None or after is None:
        side = (
            "either version"
            if before is None and after is None
            else ("the active version" if before is None else "the candidate")
        )
        return GateVerdict(
            metric,
            before,
            after,
            max_drop,
            False,
            f"{metric} was not measured for {side}: the gold set needs lines with an "
            "expected_answer to judge answer quality",
        )
    drop = before - after
    passed = drop <= max_drop + 1e-9
    comparison = "within" if passed else "more than"
    return GateVerdict(
        metric,
        before,
        after,
        max_drop,
        passed,
        f"{metric} {before:.3f} -> {after:.3f}: a drop of {drop:+.3f}, {comparison} the "
        f"allowed {max_drop:.3f}",
    )
