"""Every API response carries an X-Request-ID, and `appliance serve` logs JSON lines with it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from appliance.server.app import create_app
from appliance.settings import Settings
from tests.conftest import ROOT, free_port

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")


def test_the_callers_id_is_kept_and_a_missing_or_odd_one_replaced(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    assert (
        client.get("/healthz", headers={"X-Request-ID": "ticket-42.a"}).headers["X-Request-ID"]
        == "ticket-42.a"
    )
    made = client.get("/healthz").headers["X-Request-ID"]
    again = client.get("/healthz").headers["X-Request-ID"]
    assert len(made) == 32 and made != again
    # Spaces, quotes and overlong ids would end up in logs and the audit log: replaced.
    for odd in ('a b"c', "x" * 200):
        replaced = client.get("/healthz", headers={"X-Request-ID": odd}).headers["X-Request-ID"]
        assert replaced != odd and len(replaced) == 32


def test_serve_logs_one_json_object_a_line_with_the_request_id(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")},
        "APPLIANCE_PROFILES": "embedded,test",
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        # Nothing listens there: /healthz answers 503, which is logged all the same.
        "APPLIANCE_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        server = subprocess.Popen([APPLIANCE, "serve", "--port", str(port)], env=env, stderr=stderr)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    response = httpx.get(
                        f"http://127.0.0.1:{port}/healthz",
                        headers={"X-Request-ID": "trace-json-1"},
                        timeout=10,
                    )
                    break
                except httpx.TransportError:
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "appliance serve did not start"
                    time.sleep(0.5)
            assert response.headers["X-Request-ID"] == "trace-json-1"
            time.sleep(0.5)  # the access line is written after the response
        finally:
            server.terminate()
            server.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message", "process"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(
        line.get("request_id") == "trace-json-1" and "GET /healthz" in line["message"]
        for line in access
    ), lines
    assert {line["process"] for line in lines} == {"api"}
