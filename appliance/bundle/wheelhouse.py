"""Wheelhouses for a bundle: every pinned package of an environment as a wheel, cached by pins."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance.bundle.manifest import BundleError

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_DONE = ".complete"
# The packages of pyproject.toml's [tool.setuptools.packages.find].
PACKAGES = ("appliance", "ingest", "models")
# 1980-01-01, the earliest time a zip file can hold.
_FIXED_EPOCH = "315532800"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Environment:
    """One Python environment of the appliance: its name, its pins, what to leave out."""

    name: str
    requirements: list[str]

    def key(self) -> str:
        text = "\n".join(self.requirements)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def pins_from_lock(
    lock: Path, leave_out: frozenset[str] = frozenset(), keep: set[str] | None = None
) -> list[str]:
    """`name==version` lines of a lock file, without comments and hashes; without the names in
    `leave_out`, and only those in `keep` when given."""
    if not lock.is_file():
        raise BundleError(
            f"{lock} is missing: `appliance bundle build` runs from a source checkout of the "
            "appliance (with requirements/*.lock)"
        )
    pins = []
    for raw in lock.read_text().splitlines():
        # A hashed lock continues a pin's line with a backslash and one `--hash` per line.
        line = raw.split("#", 1)[0].split("--hash", 1)[0].strip().rstrip("\\").strip()
        match = _NAME.match(line)
        if not match:
            continue
        name = canonical(match.group(1))
        if name not in leave_out and (keep is None or name in keep):
            pins.append(line)
    return pins


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-15:])
        raise BundleError(f"{what} failed (pip exited {result.returncode}):\n{tail}")


def _staging(folder: Path) -> Path:
    """An empty folder beside `folder` to fill; published with `_publish` once complete."""
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, folder: Path, done: str) -> Path:
    """Marks the filled staging folder complete and gives it its name: a cached wheelhouse is
    either whole or absent."""
    (staging / _DONE).write_text(done)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def wheelhouse(environment: Environment, cache: Path) -> Path:
    """A folder with one wheel per pin, built once per set of pins (`pip wheel` downloads the
    wheels PyPI has and builds the rest); later builds of the bundle reuse it."""
    folder = cache / f"{environment.name}-{environment.key()}"
    if (folder / _DONE).is_file():
        return folder
    staging = _staging(folder)
    requirements = staging / "requirements.txt"
    requirements.write_text("\n".join(environment.requirements) + "\n")
    _run(
        _pip("wheel", "--no-deps", "-q", "-w", str(staging), "-r", str(requirements)),
        f"collecting the wheels of the {environment.name} environment",
    )
    requirements.unlink()
    return _publish(staging, folder, "\n".join(environment.requirements) + "\n")


@dataclass(frozen=True)
class PlatformTarget:
    """Another machine's platform, for wheels downloaded here and installed there."""

    platform: str  # manylinux_2_31_x86_64: that glibc or newer
    python: str  # 3.11
    abi: str  # cp311

    def pip_arguments(self) -> list[str]:
        return [
            "--only-binary=:all:",
            "--platform",
            self.platform,
            "--python-version",
            self.python,
            "--implementation",
            "cp",
            "--abi",
            self.abi,
        ]


def platform_wheelhouse(name: str, lock: Path, target: PlatformTarget, cache: Path) -> Path:
    """One wheel per pin of a hashed lock, for `target`'s platform: pip checks every download
    against the lock's hashes (a lock without them is refused). Cached by the lock's text."""
    text = lock.read_text()
    key = hashlib.sha256((text + repr(target)).encode()).hexdigest()[:16]
    folder = cache / f"{name}-{key}"
    if (folder / _DONE).is_file():
        return folder
    staging = _staging(folder)
    _run(
        _pip(
            "download", "--no-deps", "--require-hashes", "-q", *target.pip_arguments(),
            "-d", str(staging), "-r", str(lock),
        ),
        f"downloading the wheels of the {name} environment ({lock})",
    )  # fmt: skip
    expected = {canonical(pin.split("==")[0]) for pin in pins_from_lock(lock)}
    got = {canonical(wheel.name.split("-")[0]) for wheel in wheels_in(staging)}
    if got != expected:
        raise BundleError(
            f"the {name} wheels do not match {lock}: missing {sorted(expected - got)}, "
            f"unexpected {sorted(got - expected)}"
        )
    return _publish(staging, folder, text)


def wheels_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.whl"))


def sources_digest(folder: Path) -> str:
    """A hash of every file's path and bytes under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def build_own_wheel(project_root: Path, out: Path) -> Path:
    """The appliance itself as a wheel, built from a copy of this checkout's sources (so the
    build leaves nothing in the tree) with fixed timestamps (so the same sources give the same
    bytes, and the same bundle release).

    Its version carries the sources' hash as a local label (0.1.0+src.1a2b3c4d5e6f): install.sh
    lets uv's cache identify wheels by name, so changed code must never share a name."""
    source = out / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project_root / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            project_root / package,
            source / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    pyproject = source / "pyproject.toml"
    label = sources_digest(source)[:12]
    stamped, count = re.subn(
        r'^version = "([^"+]+)"$',
        rf'version = "\1+src.{label}"',
        pyproject.read_text(),
        count=1,
        flags=re.MULTILINE,
    )
    if count != 1:
        raise BundleError(f'{project_root / "pyproject.toml"} has no `version = "..."` line')
    pyproject.write_text(stamped)
    _run(
        _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)),
        "building the appliance's wheel",
        env={**os.environ, "SOURCE_DATE_EPOCH": _FIXED_EPOCH},
    )
    built = sorted(out.glob("onprem_rag_appliance-*.whl"))
    if not built:
        raise BundleError(f"building the appliance's wheel left nothing in {out}")
    return built[-1]


def wheel_version(wheel: Path) -> str:
    """The version in a wheel's file name (name-version-python-abi-platform.whl)."""
    return wheel.name.split("-")[1]
