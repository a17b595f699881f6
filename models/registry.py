"""Model versions side by side: which one each served name runs, and the switches for rollback.

A version is a manifest entry (a folder under models.dir). Clients always ask for the served
name (`llm.model`, the launch profile's `model`); the registry says which version's files vLLM
loads under that name. Before anything is activated, the served name's own entry is its version.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.manifest import Manifest

REGISTRY_FILE = "registry.json"


class NothingToRollBack(RuntimeError):
    pass


@dataclass(frozen=True)
class Switch:
    """One change of the active version, as `appliance models list --history` shows it."""

    served: str
    version: str
    previous: str
    action: str  # activate | rollback
    actor: str
    forced: bool = False
    at: float = field(default_factory=time.time)


@dataclass
class _Slot:
    # The versions activated in turn, the active one last: rollback pops it.
    stack: list[str]
    switches: list[Switch] = field(default_factory=list)


class ModelRegistry:
    """`registry.json` beside the manifest; written whole and renamed, so never half-written."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._path = models_dir / REGISTRY_FILE

    def _load(self) -> dict[str, _Slot]:
        if not self._path.is_file():
            return {}
        raw = json.loads(self._path.read_text())
        return {
            served: _Slot(slot["stack"], [Switch(**item) for item in slot["switches"]])
            for served, slot in raw.items()
        }

    def _save(self, slots: dict[str, _Slot]) -> None:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(
            json.dumps({served: asdict(slot) for served, slot in slots.items()}, indent=2)
        )
        temporary.replace(self._path)

    def active(self, served: str) -> str:
        slot = self._load().get(served)
        return slot.stack[-1] if slot and slot.stack else served

    def previous(self, served: str) -> str:
        """The version a rollback returns to; NothingToRollBack when there is none."""
        slot = self._load().get(served)
        if not slot or len(slot.stack) < 2:
            raise NothingToRollBack(
                f"{served!r} has no earlier version to roll back to: it runs "
                f"{self.active(served)!r}, the first version activated"
            )
        return slot.stack[-2]

    def switches(self, served: str) -> list[Switch]:
        slot = self._load().get(served)
        return list(slot.switches) if slot else []

    def activate(self, served: str, version: str, actor: str, forced: bool = False) -> Switch:
        slots = self._load()
        slot = slots.setdefault(served, _Slot([served]))
        switch = Switch(served, version, slot.stack[-1], "activate", actor, forced)
        if version != slot.stack[-1]:
            slot.stack.append(version)
        slot.switches.append(switch)
        self._save(slots)
        return switch

    def rollback(self, served: str, actor: str) -> Switch:
        slots = self._load()
        target = self.previous(served)
        slot = slots[served]
        switch = Switch(served, target, slot.stack.pop(), "rollback", actor)
        slot.switches.append(switch)
        self._save(slots)
        return switch


@dataclass(frozen=True)
class VersionRow:
    name: str
    quantization: str
    parent: str | None
    megabytes: float
    created_at: float
    active_for: list[str]


def list_versions(
    manifest: Manifest, registry: ModelRegistry, served: list[str]
) -> list[VersionRow]:
    """Every version in the manifest, oldest first, with the served names it is active for."""
    active = {name: registry.active(name) for name in served}
    entries = sorted(manifest.entries().values(), key=lambda entry: entry.created_at)
    return [
        VersionRow(
            entry.name,
            entry.quantization,
            entry.parent,
            sum(item.bytes for item in entry.files) / 2**20,
            entry.created_at,
            [name for name, version in active.items() if version == entry.name],
        )
        for entry in entries
    ]
