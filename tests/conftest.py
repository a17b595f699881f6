"""Shared fixtures: the test profile, per-test data dirs, and the real embedder loaded once."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

# Under pytest the test profile applies on top of the embedded default, and nothing may reach
# a model hub.
os.environ["APPLIANCE_PROFILES"] = "embedded,test"
os.environ["HF_HUB_OFFLINE"] = "1"

from appliance.components.embedding import Embedder, build_embedder
from appliance.settings import Settings, load_settings
from appliance.settings.settings import EmbeddingSettings

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "samples" / "corpus"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Removes the temporary folders that earlier runs left in pytest's own place for them.

    A run writes up to 8 GB there at once (bundles, installed releases) and pytest keeps a
    failed run's folders, and used to keep the last three runs': a CI machine whose disk they
    filled failed the next run. A folder whose lock names a live process (a run still going on)
    stays. With --basetemp, pytest empties the given folder itself."""
    if session.config.getoption("basetemp"):
        return
    temproot = Path(os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir())
    for folder in temproot.glob(f"pytest-of-{getpass.getuser()}/pytest-*"):
        if folder.is_dir() and not folder.is_symlink() and not _run_in_progress(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _run_in_progress(folder: Path) -> bool:
    """Whether pytest's lock in `folder` holds the pid of a live process."""
    try:
        pid = int((folder / ".lock").read_text())
        os.kill(pid, 0)
    except PermissionError:
        return True  # alive, as another user
    except (OSError, ValueError):
        return False  # no lock (the run ended), an unreadable one, or no such process
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def settings_for(data_dir: Path, **overrides: str) -> Settings:
    """Settings as the CLI would load them, for this data dir and APPLIANCE__ overrides."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    environ |= {"APPLIANCE_DATA_DIR": str(data_dir), **overrides}
    return load_settings(environ=environ)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path / "data")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return build_embedder(EmbeddingSettings())


def api_client(
    settings: Settings,
    components=None,
    *,
    role: str = "admin",
    groups: tuple[str, ...] = ("everyone",),
    raise_server_exceptions: bool = True,
):
    """A TestClient of the API that sends a fresh key of `role` with every request."""
    from fastapi.testclient import TestClient

    from appliance.container import Components
    from appliance.server.app import create_app

    components = components or Components(settings)
    _, token = components.keys.create("tester", role, list(groups), "tests")
    client = TestClient(
        create_app(settings, components), raise_server_exceptions=raise_server_exceptions
    )
    client.headers["Authorization"] = f"Bearer {token}"
    return client


# The one vLLM of the test session, for every folder that asks for `inference` (e2e, ops).
from tests.inference import inference  # noqa: E402, F401
