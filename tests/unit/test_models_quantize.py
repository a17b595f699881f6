"""GPTQ quantization's side in the appliance: calibration sampling and the checks around the job.

The job itself (GPTQModel on SmolLM2) runs in tests/e2e/test_models_lifecycle.py.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from models.manifest import Manifest, ModelEntry, ModelIntegrityError, hash_folder
from models.quantize import (
    MIN_CALIBRATION_WORDS,
    Calibration,
    QuantizationFailed,
    quantize_gptq,
    sample_calibration,
    version_name,
)
from tests.conftest import ROOT

LONG = " ".join(["word"] * MIN_CALIBRATION_WORDS)
CHUNKS = [(f"doc:v1:{n}", f"passage {n} {LONG}") for n in range(40)]


def test_the_same_index_and_seed_give_the_same_sample_in_any_order() -> None:
    first = sample_calibration(CHUNKS, 8, seed=3)
    shuffled = CHUNKS[:]
    random.Random(1).shuffle(shuffled)
    again = sample_calibration(shuffled, 8, seed=3)
    assert again.chunk_ids == first.chunk_ids and again.sha256() == first.sha256()
    assert len(set(first.chunk_ids)) == 8 and first.available == 40
    assert sample_calibration(CHUNKS, 8, seed=4).chunk_ids != first.chunk_ids


def test_short_passages_are_not_calibration_and_a_small_index_gives_what_it_has() -> None:
    chunks = [*CHUNKS[:3], ("doc:v1:99", "a title only")]
    calibration = sample_calibration(chunks, 64, seed=0)
    assert sorted(calibration.chunk_ids) == [cid for cid, _ in CHUNKS[:3]]
    with pytest.raises(QuantizationFailed, match="ingest the documents"):
        sample_calibration([("doc:v1:0", "too short")], 8, seed=0)


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    folder = tmp_path / "models" / "base"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    manifest = Manifest(tmp_path / "models")
    manifest.put(ModelEntry("base", "hf", "none", "test", hash_folder(folder)))
    return manifest


CALIBRATION = Calibration([f"text {LONG}"], ["doc:v1:0"], 0, 1)


def test_a_tampered_source_is_never_quantized(manifest: Manifest, tmp_path: Path) -> None:
    (manifest.folder("base") / "config.json").write_text('{"changed": true}')
    with pytest.raises(ModelIntegrityError, match=r"changed config\.json"):
        quantize_gptq(Path(sys.executable), manifest, "base", CALIBRATION, tmp_path / "q.log")
    assert not (tmp_path / "q.log").exists()


def test_an_existing_version_is_kept_unless_forced(manifest: Manifest, tmp_path: Path) -> None:
    name = version_name("base", 4, 64)
    assert name == "base-gptq-4bit-g64"
    manifest.folder(name).mkdir()
    manifest.put(ModelEntry(name, "hf", "gptq", "test", [], parent="base"))
    with pytest.raises(QuantizationFailed, match="already exists; pass --name"):
        quantize_gptq(Path(sys.executable), manifest, "base", CALIBRATION, tmp_path / "q.log")


def test_bits_and_the_inference_python_are_checked_first(
    manifest: Manifest, tmp_path: Path
) -> None:
    with pytest.raises(QuantizationFailed, match="2, 3, 4 or 8 bits, not 5"):
        quantize_gptq(Path(sys.executable), manifest, "base", CALIBRATION, tmp_path / "l", bits=5)
    missing = tmp_path / "no-venv" / "python"
    with pytest.raises(QuantizationFailed, match=r"run scripts/setup\.sh"):
        quantize_gptq(missing, manifest, "base", CALIBRATION, tmp_path / "l")


def test_a_failed_job_leaves_no_version_behind_and_shows_its_log(
    manifest: Manifest, tmp_path: Path
) -> None:
    # The appliance's own environment has no GPTQModel: a real job that fails on import.
    appliance_python = ROOT / ".venv" / "bin" / "python"
    log = tmp_path / "logs" / "quantize.log"
    with pytest.raises(QuantizationFailed, match="exited with code 1") as failure:
        quantize_gptq(appliance_python, manifest, "base", CALIBRATION, log)
    assert "No module named 'gptqmodel'" in str(failure.value)
    assert "No module named 'gptqmodel'" in log.read_text()
    assert set(manifest.entries()) == {"base"}
    assert sorted(path.name for path in manifest.models_dir.iterdir()) == ["base", "manifest.json"]
