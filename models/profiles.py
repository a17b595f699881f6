"""vLLM launch profiles: one YAML file each in models/profiles/, read into LaunchProfile."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROFILES_DIR = Path(__file__).parent / "profiles"
_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)(?::([^}]*))?\}")


@dataclass(frozen=True)
class LaunchProfile:
    name: str
    model: str  # manifest entry served, and the name clients ask for
    device: str  # cpu | cuda
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    min_compute_capability: float | None = None
    min_free_vram_gib: float | None = None
    # The NVIDIA driver's major version the profile's CUDA build runs on.
    min_driver_version: int | None = None


def available_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILES_DIR.glob("*.yaml"))


def expand(text: str, environ: Mapping[str, str]) -> str:
    """`${NAME:default}` from the environment: how a host's inventory (Ansible writes these into
    the inference unit's environment) sets model length, memory share and GPU count."""
    return _PLACEHOLDER.sub(lambda match: environ.get(match[1], match[2] or ""), text)


def load_profile(name: str, environ: Mapping[str, str] | None = None) -> LaunchProfile:
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no launch profile {name!r}; known: {', '.join(available_profiles())}")
    environ = os.environ if environ is None else environ
    raw = yaml.safe_load(path.read_text())
    raw["args"] = [expand(str(arg), environ) for arg in raw.get("args") or []]
    raw["env"] = {key: expand(str(value), environ) for key, value in (raw.get("env") or {}).items()}
    return LaunchProfile(**raw)
