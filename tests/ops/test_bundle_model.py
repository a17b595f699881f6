"""`appliance bundle build --model FOLDER`, as IT runs it on the connected build host.

A STAND-IN FOR MISTRAL-7B: a two-layer Llama with random weights (Mistral's family; SmolLM2's
tokenizer and chat template), made here so GPTQ takes seconds, not the build host's hours. It
is imported with its licence and chat template, GPTQ-quantized with the real GPTQModel, named
as the GPU profile serves it, and shipped; the offline side only re-checks the hashes. That
vLLM's CUDA build then serves the 7B version is what only a GPU server can show.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from appliance.bundle.builder import CUDA_LOCK
from appliance.bundle.manifest import verify_archive
from appliance.bundle.wheelhouse import pins_from_lock
from models.manifest import Manifest
from models.profiles import load_profile
from tests.conftest import CORPUS, ROOT
from tests.inference import MODELS_CACHE
from tests.ops.test_ansible_install import CLEAN_ENV

pytestmark = pytest.mark.e2e  # a GPTQ run and a 1 GB archive: skip with -m "not e2e"

SERVED = load_profile("gpu-mistral-gptq").model
SMOLLM2 = MODELS_CACHE / "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory, inference) -> Path:
    """The stand-in model folder (after `inference`, which prepares SmolLM2's tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("mistral-stand-in")
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).to(torch.float16).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(SMOLLM2 / name, folder / name)
    (folder / "LICENSE").write_text("Apache License\nVersion 2.0, January 2004\n")
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# A stand-in\n")
    # Pickled weights run code when loaded: never carried, even beside safetensors.
    (folder / "pytorch_model.bin").write_bytes(b"not carried")
    # Mistral's own format beside the Hugging Face one: the same weights again, not served.
    (folder / "consolidated.safetensors").write_bytes(b"not carried")
    return folder


def _stand_in_cuda_lock(folder: Path) -> Path:
    """Two pins of the real GPU lock, with their hashes: the download and hash check are real,
    but there is no vLLM in it, so the install must refuse to call it installed."""
    blocks = re.split(r"\n(?=\S)", (ROOT / CUDA_LOCK).read_text())
    kept = [block for block in blocks if block.split("==")[0] in ("idna", "llguidance")]
    assert len(kept) == 2
    lock = folder / "stand-in-cuda.lock"
    lock.write_text("\n".join(kept) + "\n")
    return lock


def _build(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [str(ROOT / ".venv/bin/appliance"), "bundle", "build", "--no-inference"]
    env = {**CLEAN_ENV, "HF_HUB_OFFLINE": "1", "APPLIANCE_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [*command, "--out", str(tmp_path / "dist"), *arguments],
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_built_bundle_carries_the_quantized_model_under_the_served_name(
    stand_in: Path, tmp_path: Path
) -> None:
    cuda_lock = _stand_in_cuda_lock(tmp_path)
    built = _build(
        tmp_path,
        *("--model", str(stand_in), "--calibrate-on", str(CORPUS)),
        *("--with-cuda", "--cuda-lock", str(cuda_lock)),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert SERVED in built.stdout
    (archive,) = (tmp_path / "dist").glob("appliance-*.tar")
    assert verify_archive(archive).ok

    # The offline side: unpack, and the manifest's hashes name exactly the bytes shipped.
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    (top,) = (tmp_path / "unpacked").iterdir()
    shipped = Manifest(top / "models")
    assert list(shipped.entries()) == [SERVED]  # the unquantized source stays on the build host
    entry = shipped.verify(SERVED)
    assert entry.quantization == "gptq" and entry.parent == f"{SERVED}-source"
    files = {item.path for item in entry.files}
    assert {"LICENSE", "README.md", "quantize_config.json", "model.safetensors"} <= files
    assert not files & {"pytorch_model.bin", "consolidated.safetensors"}
    config = json.loads((top / "models" / SERVED / "config.json").read_text())
    assert (config["quantization_config"]["bits"], config["quantization_config"]["group_size"]) == (
        4,
        64,
    )
    details = entry.details
    assert (
        details["licence"]["declared"] == "apache-2.0" and "LICENSE" in details["licence"]["files"]
    )
    assert details["chat_template_system_role"] is True and details["chat_template_sha256"]
    assert details["calibration_texts"] > 0 and details["gptqmodel"]

    # The GPU hosts' environment: the lock's wheels for their platform, listed and hashed; an
    # environment without vLLM is installed but never marked installed.
    cuda_wheels = sorted(path.name for path in (top / "wheels/inference-cuda").iterdir())
    assert [name.split("-")[0] for name in cuda_wheels] == ["idna", "llguidance"]
    assert "manylinux_2_31_x86_64" in cuda_wheels[1]
    listed = (top / "requirements/inference-cuda.txt").read_text().split()
    assert listed == pins_from_lock(cuda_lock)
    assert "inference-cuda" in json.loads((top / "BUNDLE.json").read_text())["environments"]
    install = subprocess.run(
        ["bash", str(top / "install.sh"), str(tmp_path / "venv-cuda"), "inference-cuda"],
        env={**CLEAN_ENV, "APPLIANCE_COMPILE_BYTECODE": "0"},
        capture_output=True,
        text=True,
    )
    assert install.returncode == 4, install.stdout + install.stderr
    assert "cannot import vllm" in install.stderr
    assert not (tmp_path / "venv-cuda/.installed").exists()

    # The build host keeps the source it imported, with where it came from.
    models = tmp_path / "data" / "models"
    local = Manifest(models).entries()
    assert local[f"{SERVED}-source"].source == f"folder {stand_in}"

    # The GPU smoke script's numerics, on the CPU here (a lent GPU runs them with CUDA): the
    # packed layers it carries dequantize to within 4-bit error of the unquantized weights.
    smoke = [str(ROOT / ".venv/bin/python"), str(ROOT / "bench/gpu_smoke.py")]
    prepared = subprocess.run(
        [*smoke, "prepare", "--gptq", str(models / SERVED), "--parent",
         str(models / f"{SERVED}-source"), "--out", str(tmp_path / "smoke")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert prepared.returncode == 0, prepared.stderr
    rows = tmp_path / "smoke.json"
    ran = subprocess.run(
        [*smoke, "run", "--data", str(tmp_path / "smoke"), "--device", "cpu", "--json", str(rows)],
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    checks = json.loads(rows.read_text())
    assert len([row for row in checks if "4-bit vs unquantized" in row["check"]]) == 3


def test_a_source_that_is_not_a_model_is_refused_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "pickles").mkdir()
    (tmp_path / "pickles" / "config.json").write_text("{}")
    (tmp_path / "pickles" / "pytorch_model.bin").write_bytes(b"x")
    refused = _build(tmp_path, "--model", str(tmp_path / "pickles"))
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 2
    assert "not a model folder vLLM can serve" in said
    assert "pickled *.bin weights are not accepted" in said
    unknown = _build(tmp_path, "--model", "./no/such/folder")
    said = " ".join(unknown.stderr.split())
    assert unknown.returncode == 2 and "neither a folder nor a model id" in said
    assert not (tmp_path / "dist").exists()
