"""The model manifest detects any changed, missing or extra file, and blocks serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.inference_server import InferenceServer
from models.manifest import (
    Manifest,
    ModelEntry,
    ModelIntegrityError,
    ModelNotPrepared,
    hash_folder,
)
from models.profiles import LaunchProfile, available_profiles, load_profile


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    folder = tmp_path / "models" / "tiny"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    manifest = Manifest(tmp_path / "models")
    entry = ModelEntry("tiny", "hf", "none", "test", hash_folder(folder))
    manifest.put(entry)
    return manifest


def test_untouched_model_verifies(manifest: Manifest) -> None:
    entry = manifest.verify("tiny")
    assert {item.path for item in entry.files} == {"config.json", "model.safetensors"}
    assert entry.digest() == manifest.get("tiny").digest()


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            lambda f: (f / "model.safetensors").write_bytes(b"\x01" * 64),
            "changed model.safetensors",
        ),
        (lambda f: (f / "config.json").unlink(), "missing config.json"),
        (lambda f: (f / "extra.py").write_text("print(1)"), "unexpected extra.py"),
    ],
)
def test_tampering_is_named(manifest: Manifest, tamper, expected: str) -> None:
    tamper(manifest.folder("tiny"))
    with pytest.raises(ModelIntegrityError, match=expected):
        manifest.verify("tiny")


def test_unknown_model_says_how_to_prepare(manifest: Manifest) -> None:
    with pytest.raises(ModelNotPrepared, match="appliance models prepare"):
        manifest.verify("other")


def test_inference_server_refuses_a_tampered_model_before_starting(
    manifest: Manifest, tmp_path: Path
) -> None:
    (manifest.folder("tiny") / "config.json").write_text('{"layers": 3}')
    server = InferenceServer(tmp_path / "no-python", "127.0.0.1", 1, tmp_path, tmp_path)
    profile = LaunchProfile(name="t", model="tiny", device="cpu")
    with pytest.raises(ModelIntegrityError, match=r"changed config\.json"):
        server.start(profile, manifest, timeout_s=1)
    assert not server.log_file.exists()  # nothing was launched


def test_both_launch_profiles_load() -> None:
    assert {"cpu-small", "gpu-mistral-gptq"} <= set(available_profiles())
    gpu = load_profile("gpu-mistral-gptq")
    # vLLM picks the kernel from the checkpoint; a fixed one breaks unquantized versions.
    assert not any(arg.startswith("--quantization") for arg in gpu.args)
    assert gpu.min_compute_capability == 8.0
    assert load_profile("cpu-small").env["VLLM_CPU_KVCACHE_SPACE"] == "1"
