"""Settings: one typed object, read from settings.yaml with profiles and environment overrides."""

from __future__ import annotations

from appliance.settings.loader import SettingsError, load_settings
from appliance.settings.settings import Settings

__all__ = ["Settings", "SettingsError", "load_settings"]
