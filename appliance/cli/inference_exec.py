"""`appliance models serve --foreground`: check the model, then become vLLM (systemd, Docker)."""

from __future__ import annotations

import os

from appliance.settings import Settings


def exec_inference(settings: Settings, profile_name: str, version: str | None = None) -> None:
    """Replace this process with vLLM, so a service manager watches and signals vLLM itself.

    `version` is the manifest entry to serve (default: the profile's model), under the
    profile's model name. The manifest check comes first, as in `models serve`: a tampered or
    half-copied model is never started. Returns only by raising.
    """
    from models.inference_server import InferenceServer
    from models.manifest import Manifest
    from models.profiles import load_profile

    launch = load_profile(profile_name)
    version = version or launch.model
    manifest = Manifest(settings.models_dir)
    manifest.verify(version)
    inference = settings.inference
    server = InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )
    if not inference.python.is_file():
        raise FileNotFoundError(
            f"the inference environment's Python {inference.python} is missing "
            "(inference.python, APPLIANCE_INFERENCE_PYTHON)"
        )
    command = server.command(launch, manifest.folder(version))
    # As in `models serve`: the environment wins over the profile, so IT can tune a host.
    env = {**launch.env, **os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    os.execve(command[0], command, env)
