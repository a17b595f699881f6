"""Model versions: the registry's active version, its rollback stack, and the gate's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.gate import judge
from models.manifest import Manifest, ModelEntry, hash_folder
from models.registry import ModelRegistry, NothingToRollBack, list_versions

SERVED = "smollm2-135m-instruct"


def _version(manifest: Manifest, name: str, size: int, created_at: float, **extra) -> None:
    folder = manifest.folder(name)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"\x00" * size)
    manifest.put(ModelEntry(name, "hf", "none", "test", hash_folder(folder), **extra))
    entry = manifest.get(name)
    entry.created_at = created_at
    manifest.put(entry)


def test_before_any_switch_the_served_name_is_its_own_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.active(SERVED) == SERVED
    assert registry.switches(SERVED) == []
    with pytest.raises(NothingToRollBack, match="no earlier version"):
        registry.previous(SERVED)


def test_rollback_walks_back_through_the_activations_in_order(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.activate(SERVED, "v-gptq", "local:ana")
    registry.activate(SERVED, "v-gptq-2", "local:ben", forced=True)
    # Another process (the API, a second CLI) reads the same file.
    again = ModelRegistry(tmp_path)
    assert again.active(SERVED) == "v-gptq-2"
    assert again.previous(SERVED) == "v-gptq"

    first = again.rollback(SERVED, "local:cy")
    assert (first.previous, first.version, first.action) == ("v-gptq-2", "v-gptq", "rollback")
    assert again.rollback(SERVED, "local:cy").version == SERVED
    with pytest.raises(NothingToRollBack):
        again.rollback(SERVED, "local:cy")
    assert again.active(SERVED) == SERVED

    switches = again.switches(SERVED)
    assert [(s.action, s.version, s.actor, s.forced) for s in switches] == [
        ("activate", "v-gptq", "local:ana", False),
        ("activate", "v-gptq-2", "local:ben", True),
        ("rollback", "v-gptq", "local:cy", False),
        ("rollback", SERVED, "local:cy", False),
    ]
    assert [path.name for path in tmp_path.iterdir()] == ["registry.json"]


def test_activating_the_active_version_again_adds_no_rollback_step(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.activate(SERVED, "v-gptq", "local:ana")
    registry.activate(SERVED, "v-gptq", "local:ana")
    assert registry.previous(SERVED) == SERVED
    assert json.loads((tmp_path / "registry.json").read_text())[SERVED]["stack"] == [
        SERVED,
        "v-gptq",
    ]


def test_served_names_keep_separate_versions(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.activate("a", "a-v2", "local:ana")
    assert registry.active("b") == "b"
    assert registry.active("a") == "a-v2"


def test_list_shows_every_version_oldest_first_with_its_parent_and_the_active_mark(
    tmp_path: Path,
) -> None:
    manifest = Manifest(tmp_path)
    _version(manifest, "gptq", 1 << 20, created_at=200.0, parent=SERVED)
    _version(manifest, SERVED, 4 << 20, created_at=100.0)
    registry = ModelRegistry(tmp_path)

    rows = list_versions(manifest, registry, [SERVED])
    assert [(r.name, r.parent, r.active_for) for r in rows] == [
        (SERVED, None, [SERVED]),
        ("gptq", SERVED, []),
    ]
    assert rows[0].megabytes == pytest.approx(4.0)

    registry.activate(SERVED, "gptq", "local:ana")
    assert [r.active_for for r in list_versions(manifest, registry, [SERVED])] == [[], [SERVED]]


@pytest.mark.parametrize(
    ("before", "after", "max_drop", "passed"),
    [
        (0.8, 0.8, 0.0, True),
        (0.8, 0.9, 0.0, True),
        (0.8, 0.75, 0.05, True),  # exactly the allowed drop
        (0.8, 0.7, 0.05, False),
        (0.5, 0.0, 0.49, False),
    ],
)
def test_the_gate_refuses_a_drop_larger_than_allowed(
    before: float, after: float, max_drop: float, passed: bool
) -> None:
    verdict = judge(
        "answer_contains", {"answer_contains": before}, {"answer_contains": after}, max_drop
    )
    assert verdict.passed is passed
    assert (verdict.active, verdict.candidate) == (before, after)
    assert ("within" if passed else "more than") in verdict.reason


def test_a_gate_that_cannot_measure_is_closed() -> None:
    measured = {"answer_contains": 1.0}
    unmeasured = {"answer_contains": None}
    for active, candidate, who in [
        (unmeasured, measured, "the active version"),
        (measured, unmeasured, "the candidate"),
        (unmeasured, unmeasured, "either version"),
    ]:
        verdict = judge("answer_contains", active, candidate, 1.0)
        assert not verdict.passed
        assert who in verdict.reason and "expected_answer" in verdict.reason
