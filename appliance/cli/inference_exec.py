"""`appliance models serve --foreground`: check the model and the GPUs, then become vLLM (systemd,
Docker); `--print-command`: the exact command line, nothing started."""

from __future__ import annotations

import os

from appliance.settings import Settings


def inference_command(
    settings: Settings, profile_name: str, version: str | None = None
) -> list[str]:
    """vLLM's command line for the profile, serving `version` (default: the profile's model)
    under the profile's model name, with the host's inventory values filled in."""
    from models.inference_server import InferenceServer
    from models.manifest import Manifest
    from models.profiles import load_profile

    launch = load_profile(profile_name)
    inference = settings.inference
    server = InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )
    return server.command(launch, Manifest(settings.models_dir).folder(version or launch.model))


def exec_inference(settings: Settings, profile_name: str, version: str | None = None) -> None:
    """Replace this process with vLLM, so a service manager watches and signals vLLM itself.

    The manifest check and the preflight come first, as in `models serve`: a tampered or
    half-copied model is never started, and a GPU that cannot run the profile is named in a
    sentence rather than minutes into vLLM's loading. Returns only by raising.
    """
    from models.manifest import Manifest
    from models.preflight import preflight
    from models.profiles import load_profile

    launch = load_profile(profile_name)
    version = version or launch.model
    entry = Manifest(settings.models_dir).verify(version)
    if not settings.inference.python.is_file():
        raise FileNotFoundError(
            f"the inference environment's Python {settings.inference.python} is missing "
            "(inference.python, APPLIANCE_INFERENCE_PYTHON)"
        )
    preflight(launch, entry.quantization)
    command = inference_command(settings, profile_name, version)
    # As in `models serve`: the environment wins over the profile, so IT can tune a host.
    env = {**launch.env, **os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    os.execve(command[0], command, env)
