"""Shared fixtures: the test profile, per-test data dirs, and the real embedder loaded once."""

from __future__ import annotations

import os
import socket
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
