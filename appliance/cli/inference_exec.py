"""`appliance models serve --foreground`: check the model, then become vLLM (systemd, Docker)."""

from __future__ import annotations

import os

from appliance.settings import Settings


def exec_inference(settings: Settings, profile_name: str) -> None:
    """Replace this process with vLLM, so a service manager watches and signals vLLM itself.

    The manifest check comes first, as in `models serve`: a tampered or half-copied model is
    never started. Returns only by raising (the check failed, or vLLM could not be executed).
    """
    from models.inference_server import InferenceServer
    from models.manifest import Manifest
    from models.profiles import load_profile

    launch = load_profile(profile_name)
    manifest = Manifest(settings.models_dir)
    manifest.verify(launch.model)
    inference = settings.inference
    server = InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )
    if not inference.python.is_file():
        raise FileNotFoundError(
            f"the inference environment's Python {inference.python} is missing "
            "(inference.python, APPLIANCE_INFERENCE_PYTHON)"
        )
    command = server.command(launch, manifest.folder(launch.model))
    # As in `models serve`: the environment wins over the profile, so IT can tune a host.
    env = {**launch.env, **os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    os.execve(command[0], command, env)
