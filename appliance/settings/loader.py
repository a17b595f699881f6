"""Loads settings.yaml, deep-merges the active profiles on top, then applies environment overrides.

Order, last wins:
1. `settings.yaml` in the settings folder (`APPLIANCE_SETTINGS_DIR`, default: the project root);
2. `settings-<profile>.yaml` for each profile in `APPLIANCE_PROFILES` (comma separated;
   default `embedded`);
3. `${VAR:default}` placeholders inside any of those files, expanded from the environment;
4. `APPLIANCE__SECTION__KEY=value` variables, for any key (the value is read as YAML, so `8081`
   becomes an int and `[a, b]` a list).
Relative paths are resolved against the settings folder, so the CLI behaves the same from any cwd.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from appliance.settings.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROFILES = "embedded"
ENV_OVERRIDE_PREFIX = "APPLIANCE__"
_PLACEHOLDER = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<default>[^}]*))?\}")
# models.dir is not here: a relative one is relative to data_dir (Settings.models_dir).
_PATH_KEYS = {
    ("data_dir",),
    ("inference", "python"),
    ("retrieval", "reranker_model"),
    ("models", "smollm2_wheel"),
    ("models", "gate_gold"),
    ("connectors", "cohere", "api_key_file"),
}


class SettingsError(ValueError):
    """The settings files or environment overrides are not valid; the message says where."""


def settings_dir() -> Path:
    return Path(os.environ.get("APPLIANCE_SETTINGS_DIR", PROJECT_ROOT)).resolve()


def active_profiles() -> list[str]:
    raw = os.environ.get("APPLIANCE_PROFILES", DEFAULT_PROFILES)
    return [name.strip() for name in raw.split(",") if name.strip()]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def expand_placeholders(value: Any, environ: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: expand_placeholders(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_placeholders(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        if default is None:
            raise SettingsError(f"settings need the environment variable {name}, which is not set")
        return default

    return _PLACEHOLDER.sub(substitute, value)


def env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_OVERRIDE_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_OVERRIDE_PREFIX) :].split("__") if part]
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = yaml.safe_load(raw) if raw else raw
    return overrides


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(content, dict):
        raise SettingsError(f"{path} must hold a mapping of settings at its top level")
    return content


def _resolve_paths(raw: dict[str, Any], root: Path) -> None:
    for key_path in _PATH_KEYS:
        node: Any = raw
        for key in key_path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        leaf = key_path[-1]
        if isinstance(node, dict) and node.get(leaf) not in (None, ""):
            path = Path(str(node[leaf])).expanduser()
            node[leaf] = path if path.is_absolute() else root / path


def load_settings(
    directory: Path | None = None,
    profiles: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    directory = directory or settings_dir()
    profiles = active_profiles() if profiles is None else profiles
    environ = dict(os.environ) if environ is None else environ

    base_file = directory / "settings.yaml"
    if not base_file.is_file():
        raise SettingsError(f"no settings.yaml in {directory} (set APPLIANCE_SETTINGS_DIR)")
    raw = _read_yaml(base_file)
    for profile in profiles:
        profile_file = directory / f"settings-{profile}.yaml"
        if not profile_file.is_file():
            raise SettingsError(f"profile '{profile}' has no file {profile_file}")
        raw = deep_merge(raw, _read_yaml(profile_file))
    raw = expand_placeholders(raw, environ)
    raw = deep_merge(raw, env_overrides(environ))
    raw["profile"] = profiles
    _resolve_paths(raw, directory)
    try:
        return Settings.model_validate(raw)
    except ValueError as error:
        raise SettingsError(f"invalid settings: {error}") from error
