"""`MANIFEST.sha256` of a bundle, and the check of an archive or an unpacked bundle against it.

The format is `sha256sum`'s (`<hex>  <path>`), so a host with no Python of ours yet can check an
unpacked bundle with `sha256sum -c MANIFEST.sha256`, which is what install.sh does first.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from appliance.errors import ApplianceError

MANIFEST_NAME = "MANIFEST.sha256"
INSTALLED_PREFIX = ".venv"
_BLOCK = 1 << 20


class BundleError(ApplianceError):
    """A bundle cannot be built or read; the message says what to do."""


def sha256_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while block := stream.read(_BLOCK):
        digest.update(block)
    return digest.hexdigest()


def sha256_path(path: Path) -> str:
    with path.open("rb") as stream:
        return sha256_stream(stream)


def format_manifest(hashes: dict[str, str]) -> str:
    return "".join(f"{hashes[path]}  {path}\n" for path in sorted(hashes))


def parse_manifest(text: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, separator, path = line.partition("  ")
        if not separator or len(digest) != 64 or not path:
            raise BundleError(f"{MANIFEST_NAME} line {number} is not '<sha256>  <path>': {line!r}")
        hashes[path] = digest
    return hashes


@dataclass
class BundleCheck:
    """What a verification found: every difference between the files and the manifest."""

    files: int = 0
    total_bytes: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra or self.unsafe)

    def problems(self) -> list[str]:
        return (
            [f"missing {path}" for path in self.missing]
            + [f"changed {path}" for path in self.changed]
            + [f"extra {path} (not in {MANIFEST_NAME})" for path in self.extra]
            + [f"unsafe {path} (a link, or a name outside the bundle)" for path in self.unsafe]
        )


def _inside(name: str) -> str | None:
    """The member's path below the bundle's top folder, or None if it would escape it."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        return None
    return PurePosixPath(*path.parts[1:]).as_posix()


def verify_archive(path: Path) -> BundleCheck:
    """Reads the archive once, hashing each file, then compares with its MANIFEST.sha256."""
    if not path.is_file():
        raise BundleError(f"{path} does not exist or is not a file")
    check = BundleCheck()
    actual: dict[str, str] = {}
    manifest_text: str | None = None
    duplicates: set[str] = set()
    try:
        # Streaming mode: one sequential read, whatever the archive's size.
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                if member.isdir():
                    continue
                inside = _inside(member.name)
                if inside is None or not member.isfile():
                    check.unsafe.append(member.name)
                    continue
                stream = archive.extractfile(member)
                if stream is None:
                    check.unsafe.append(member.name)
                    continue
                if inside == MANIFEST_NAME:
                    manifest_text = stream.read().decode()
                    continue
                if inside in actual:
                    # A later member of the same name wins on extraction: the file was swapped.
                    duplicates.add(inside)
                actual[inside] = sha256_stream(stream)
                check.files += 1
                check.total_bytes += member.size
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as error:
        raise BundleError(f"{path} is not a readable bundle archive: {error}") from None
    if manifest_text is None:
        raise BundleError(f"{path} has no {MANIFEST_NAME}: it is not a bundle, or it is truncated")
    return _compare(parse_manifest(manifest_text), actual, check, duplicates)


def verify_directory(root: Path) -> BundleCheck:
    """The same check on an unpacked bundle (a release folder); the environments install.sh
    builds inside it (`.venv`, `.venv-inference`) are not part of the bundle."""
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise BundleError(f"{root} has no {MANIFEST_NAME}: it is not an unpacked bundle")
    check = BundleCheck()
    actual: dict[str, str] = {}
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root).as_posix()
        if relative.startswith(INSTALLED_PREFIX):
            continue
        if file.is_symlink():
            check.unsafe.append(relative)
        elif file.is_file() and relative != MANIFEST_NAME:
            actual[relative] = sha256_path(file)
            check.files += 1
            check.total_bytes += file.stat().st_size
    return _compare(parse_manifest(manifest.read_text()), actual, check, set())


def verify(path: Path) -> BundleCheck:
    return verify_directory(path) if path.is_dir() else verify_archive(path)


def _compare(
    expected: dict[str, str], actual: dict[str, str], check: BundleCheck, duplicates: set[str]
) -> BundleCheck:
    check.missing = sorted(expected.keys() - actual.keys())
    check.extra = sorted(actual.keys() - expected.keys())
    check.changed = sorted(
        duplicates
        | {path for path in expected.keys() & actual.keys() if expected[path] != actual[path]}
    )
    return check
