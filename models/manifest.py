"""The manifest of model artifacts: each file's sha256, so a tampered model is never served."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
_READ_BLOCK = 1 << 20


class ModelIntegrityError(RuntimeError):
    """A model's files do not match its manifest entry; the message lists each difference."""


class ModelNotPrepared(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelFile:
    path: str  # relative to the model's folder
    sha256: str
    bytes: int


@dataclass
class ModelEntry:
    name: str
    format: str  # hf
    quantization: str  # none | gptq
    source: str
    files: list[ModelFile]
    parent: str | None = None
    created_at: float = field(default_factory=time.time)
    # How it was made, for a person reading the manifest (GPTQ: bits, group size, calibration
    # hash and seed); not part of digest(), which names the bytes served.
    details: dict[str, Any] = field(default_factory=dict)

    def digest(self) -> str:
        """The manifest hash recorded with every answer: it names exactly these bytes."""
        canonical = json.dumps(
            {"name": self.name, "files": [asdict(item) for item in self.files]}, sort_keys=True
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def hash_folder(folder: Path) -> list[ModelFile]:
    return [
        ModelFile(str(path.relative_to(folder)), sha256_file(path), path.stat().st_size)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def swap_in(staging: Path, target: Path) -> None:
    """Moves a fully written folder to its name, replacing what was there: a half-written
    model folder is never visible under its name. `staging` must be on the same file system
    (beside the target), so the move is a rename."""
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(staging), target)


class Manifest:
    """`manifest.json` beside the model folders it describes (one folder per entry name)."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._path = models_dir / MANIFEST_FILE

    def entries(self) -> dict[str, ModelEntry]:
        if not self._path.is_file():
            return {}
        raw = json.loads(self._path.read_text())
        return {
            name: ModelEntry(**{**entry, "files": [ModelFile(**item) for item in entry["files"]]})
            for name, entry in raw.items()
        }

    def get(self, name: str) -> ModelEntry:
        entries = self.entries()
        if name not in entries:
            raise ModelNotPrepared(
                f"model {name!r} is not in {self._path}; run `appliance models prepare`"
            )
        return entries[name]

    def put(self, entry: ModelEntry) -> None:
        entries = self.entries()
        entries[entry.name] = entry
        self.models_dir.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(
            json.dumps({name: asdict(item) for name, item in entries.items()}, indent=2)
        )
        temporary.replace(self._path)

    def folder(self, name: str) -> Path:
        return self.models_dir / name

    def verify(self, name: str) -> ModelEntry:
        """The entry, if every file matches; otherwise ModelIntegrityError naming the files."""
        entry = self.get(name)
        expected = {item.path: item.sha256 for item in entry.files}
        actual = {item.path: item.sha256 for item in hash_folder(self.folder(name))}
        problems = [f"missing {path}" for path in sorted(expected.keys() - actual.keys())]
        problems += [f"unexpected {path}" for path in sorted(actual.keys() - expected.keys())]
        problems += [
            f"changed {path}"
            for path in sorted(expected.keys() & actual.keys())
            if expected[path] != actual[path]
        ]
        if problems:
            raise ModelIntegrityError(
                f"refusing to serve model {name!r}: its files do not match the manifest "
                f"({'; '.join(problems)}). Re-run `appliance models prepare --force` or restore "
                "the files from the bundle."
            )
        return entry
