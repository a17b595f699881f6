"""Settings: one typed object, read from settings.yaml with profiles and environment overrides."""

from __future__ import annotations

from functools import lru_cache

from appliance.settings.loader import SettingsError, load_settings
from appliance.settings.settings import Settings

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests and the CLI build their own with load_settings()."""
    return load_settings()
