"""Usage limits over HTTP, several keys at once on a real uvicorn server.

One noisy key sends four times its per-minute limit from eight threads while two other keys ask
alongside it. Each assertion can fail: the quiet keys get every answer, the noisy one exactly its
limit, and the refusals are audited once and counted in /metrics.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn

from appliance.container import Components
from appliance.server.app import create_app
from ingest.catalog import Catalog
from ingest.service import IngestService
from tests.conftest import CORPUS, free_port, settings_for

LIMIT = 10


@pytest.fixture
def server(tmp_path: Path, embedder) -> Iterator[tuple[str, Components]]:
    settings = settings_for(
        tmp_path / "data", APPLIANCE__LIMITS__PER_KEY=f"{{requests_per_minute: {LIMIT}}}"
    )
    components = Components(settings)
    components.embedder = embedder
    IngestService(
        settings, embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest(sorted(CORPUS.iterdir()))
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, components), host="127.0.0.1", port=port, log_level="warning"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", components
    finally:
        running.should_exit = True
        thread.join(timeout=10)


def _rate_limited(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    found = re.search(
        r'^appliance_rate_limited_total\{limit="requests_per_minute",scope="key"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    assert found, text[:2000]
    return float(found.group(1))


def test_one_noisy_key_is_held_to_its_limit_and_the_others_are_not(server) -> None:
    base, components = server
    tokens = {
        name: components.keys.create(name, "reader", ["everyone"], "tests")[1]
        for name in ("noisy", "quiet-1", "quiet-2")
    }
    before = _rate_limited(base)
    # Started on a fresh minute's first half, so all the requests fall in one window.
    while time.time() % 60 > 30:
        time.sleep(0.5)

    def search(name: str) -> httpx.Response:
        return httpx.post(
            f"{base}/v1/search",
            json={"query": "How long until a VPN session expires?"},
            headers={"Authorization": f"Bearer {tokens[name]}"},
            timeout=60,
        )

    names = ["noisy"] * (4 * LIMIT) + ["quiet-1", "quiet-2"] * (LIMIT // 2)
    with ThreadPoolExecutor(8) as pool:
        responses = list(zip(names, pool.map(search, names), strict=True))
    noisy = [response for name, response in responses if name == "noisy"]
    quiet = [response for name, response in responses if name != "noisy"]
    assert [response.status_code for response in quiet] == [200] * LIMIT
    assert sorted(response.status_code for response in noisy) == [200] * LIMIT + [429] * (3 * LIMIT)
    refused = next(response for response in noisy if response.status_code == 429)
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "over its limit of 10 requests a minute" in refused.json()["message"]
    records = components.audit.records(kind="rate_limited")
    assert [(record.actor, record.payload["limit"]) for record in records] == [
        ("noisy", "requests_per_minute")
    ]
    assert _rate_limited(base) - before == 3 * LIMIT
