"""Starts, watches and stops the vLLM server (in its own Python environment) for a profile."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from models.manifest import Manifest
from models.profiles import LaunchProfile

_POLL_S = 1.0
_LOG_TAIL_LINES = 25


class InferenceStartFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class RunningServer:
    pid: int
    url: str
    model: str
    log: Path
    seconds_to_ready: float
    already_running: bool = False


def models_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/v1/models"


def answering_models(host: str, port: int, timeout: float = 2.0) -> list[str] | None:
    """Served model names, or None when nothing answers there."""
    try:
        response = httpx.get(models_url(host, port), timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return [entry["id"] for entry in response.json().get("data", [])]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    if not path.is_file():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class InferenceServer:
    def __init__(self, python: Path, host: str, port: int, run_dir: Path, log_dir: Path) -> None:
        self.python = python
        self.host = host
        self.port = port
        self.pid_file = run_dir / "vllm.pid"
        # Which model version the running server loaded: the served name alone does not say.
        self.version_file = run_dir / "vllm.version"
        self.log_file = log_dir / "vllm.log"

    def pid(self) -> int | None:
        if not self.pid_file.is_file():
            return None
        pid = int(self.pid_file.read_text().strip() or 0)
        return pid if pid and _alive(pid) else None

    def version(self) -> str | None:
        """The model version the running server loaded, or None when none runs."""
        if self.pid() is None or not self.version_file.is_file():
            return None
        return self.version_file.read_text().strip() or None

    def command(self, profile: LaunchProfile, model_dir: Path) -> list[str]:
        return [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            f"--model={model_dir}",
            f"--served-model-name={profile.model}",
            f"--host={self.host}",
            f"--port={self.port}",
            *profile.args,
        ]

    def start(
        self,
        profile: LaunchProfile,
        manifest: Manifest,
        timeout_s: float,
        version: str | None = None,
    ) -> RunningServer:
        """Serves `version` (a manifest entry; default the profile's model) under the profile's
        model name, which is the name clients ask for whichever version answers."""
        version = version or profile.model
        # The manifest check comes first: a tampered or half-copied model is never started.
        entry = manifest.verify(version)
        running = self.pid()
        served = answering_models(self.host, self.port)
        if running and served and profile.model in served:
            # A server started before versions existed loaded the profile's own model.
            loaded = self.version() or profile.model
            if loaded != version:
                raise InferenceStartFailed(
                    f"vLLM (pid {running}) already serves {profile.model} from version "
                    f"{loaded!r}; stop it first to serve {version!r}"
                )
            return RunningServer(
                running, models_url(self.host, self.port), profile.model, self.log_file, 0.0, True
            )
        if served is not None:
            raise InferenceStartFailed(
                f"port {self.port} already answers as an inference server serving {served}; "
                "stop it or set inference.port"
            )
        if not self.python.is_file():
            raise InferenceStartFailed(
                f"the inference environment's Python {self.python} is missing; run scripts/setup.sh"
            )
        from models.preflight import preflight

        # A GPU that cannot run the profile is named now, not minutes into vLLM's loading.
        preflight(profile, entry.quantization)

        # Readable by the service's user only (the appliance's CLI has made the data folder
        # above them private already; `models` does not import `appliance`).
        for folder in (self.pid_file.parent, self.log_file.parent):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Settings already in the environment win over the profile's, so IT can tune a host.
        env = {**profile.env, **os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
        started = time.perf_counter()
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                self.command(profile, manifest.folder(version)),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stop() ends all its workers
            )
        self.pid_file.write_text(str(process.pid))
        self.version_file.write_text(version)
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise InferenceStartFailed(
                    f"vLLM exited with code {process.returncode} while starting; the end of "
                    f"{self.log_file}:\n{_tail(self.log_file)}"
                )
            served = answering_models(self.host, self.port)
            if served and profile.model in served:
                return RunningServer(
                    process.pid,
                    models_url(self.host, self.port),
                    profile.model,
                    self.log_file,
                    time.perf_counter() - started,
                )
            time.sleep(_POLL_S)
        self.stop()
        raise InferenceStartFailed(
            f"vLLM was not ready after {timeout_s:.0f} s; the end of {self.log_file}:\n"
            f"{_tail(self.log_file)}"
        )

    def stop(self, grace_s: float = 30.0) -> bool:
        """True if a server was running and is now stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
                # Reap it if it is our child, so it does not linger as a zombie.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                break
        self.pid_file.unlink(missing_ok=True)
        self.version_file.unlink(missing_ok=True)
        return True
