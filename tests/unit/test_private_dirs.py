"""Run by hand under umask 022, the appliance's data folder is still its user's alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.container import Components
from tests.conftest import settings_for


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_folder_is_made_0700_and_an_existing_one_keeps_its_mode(
    tmp_path: Path,
) -> None:
    previous = os.umask(0o022)
    try:
        settings = settings_for(tmp_path / "fresh" / "data")
        components = Components(settings)
        components.audit.append("probe", "tests", [], {})
        components.keys.create("someone", "reader", ["everyone"], "tests")
        components.chunk_store.count()
        assert _mode(settings.data_dir) == 0o700
        assert _mode(tmp_path / "fresh") == 0o700
        assert settings.catalog_path.is_file()
        databases = [path for path in settings.data_dir.glob("*.sqlite3*") if path.is_file()]
        assert settings.catalog_path in databases
        assert {path.name: _mode(path) for path in databases} == {
            path.name: 0o600 for path in databases
        }
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o750)
        Components(settings_for(shared)).audit.append("probe", "tests", [], {})
        assert _mode(shared) == 0o750  # an administrator's choice stays
    finally:
        os.umask(previous)
