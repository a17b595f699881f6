"""vLLM launch profiles: one YAML file each in models/profiles/, read into LaunchProfile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROFILES_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True)
class LaunchProfile:
    name: str
    model: str  # manifest entry served, and the name clients ask for
    device: str  # cpu | cuda
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    min_compute_capability: float | None = None
    min_free_vram_gib: float | None = None


def available_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILES_DIR.glob("*.yaml"))


def load_profile(name: str) -> LaunchProfile:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no launch profile {name!r}; known: {', '.join(available_profiles())}")
    raw = yaml.safe_load(path.read_text())
    raw["env"] = {key: str(value) for key, value in (raw.get("env") or {}).items()}
    return LaunchProfile(**raw)
