"""The systemd units load cleanly in systemd's own verifier and keep their hardening."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

UNITS = ROOT / "systemd"
SERVICES = [
    "appliance-api.service",
    "appliance-worker@.service",
    "appliance-inference.service",
    "appliance-chroma.service",
]
# What every service must keep; the test fails if an edit drops one.
HARDENING = {
    "User": "appliance",
    "Group": "appliance",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "ReadWritePaths": "/var/lib/appliance",
    "IPAddressDeny": "any",
    "IPAddressAllow": "localhost",
    "EnvironmentFile": "-/etc/appliance/appliance.env",
}
# systemd-analyze security's scale: 0 is locked down, 10 is fully exposed; under 2 is "OK".
MAX_EXPOSURE = 2.0

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze missing: scripts/setup.sh"
)


def _settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _root_with_units(tmp_path: Path, units: Path) -> Path:
    """A file system root holding the units, systemd's own units and the installed commands:
    `verify` checks every ExecStart= program exists and every dependency loads."""
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(units, root / "etc/systemd/system")
    bin_dir = root / "opt/appliance/current/.venv/bin"
    bin_dir.mkdir(parents=True)
    for command in ("appliance", "chroma"):
        (bin_dir / command).write_text("#!/bin/sh\n")
        (bin_dir / command).chmod(0o755)
    return root


def _verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "--generators=no", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "unit",
    [
        "appliance-api.service",
        "appliance-worker@1.service",
        "appliance-inference.service",
        "appliance-chroma.service",
        "appliance.target",
    ],
)
def test_systemd_analyze_verify_passes(tmp_path: Path, unit: str) -> None:
    result = _verify(_root_with_units(tmp_path, UNITS), unit)
    # verify prints a line for anything it ignores (unknown key, bad value) even when it exits 0.
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_verify_catches_a_misspelt_or_bad_setting(tmp_path: Path) -> None:
    broken = tmp_path / "units"
    shutil.copytree(UNITS, broken)
    api = broken / "appliance-api.service"
    api.write_text(api.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    result = _verify(_root_with_units(tmp_path, broken), "appliance-api.service")
    assert "Unknown key" in result.stderr and "ProtectSytem" in result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_keeps_its_hardening(service: str) -> None:
    found = _settings(UNITS / service)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], f"{service}: {key}={found.get(key)}"
    assert found["Restart"] == ["on-failure"]
    assert found["SystemCallFilter"] == ["@system-service", "~@privileged"]
    # The code is read-only, the data folder the only writable place, by convention shared with
    # the Ansible roles.
    assert all(command.startswith("/opt/appliance/current/") for command in found["ExecStart"])
    assert found["WantedBy"] == ["appliance.target"]


@pytest.mark.parametrize("service", SERVICES)
def test_security_exposure_stays_low(service: str) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNITS / service)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < MAX_EXPOSURE, result.stdout
