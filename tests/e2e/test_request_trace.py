"""A query's request id, from the API to the real vLLM's log and the audit record; LLM metrics."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from appliance.container import Components
from ingest.service import IngestService
from tests.conftest import CORPUS, api_client, settings_for
from tests.e2e.conftest import Inference
from tests.ops.prometheus import scrape

pytestmark = pytest.mark.e2e


def _vllm_logged(log: Path, request_id: str, timeout: float = 30.0) -> bool:
    # vLLM names the request chatcmpl-<X-Request-Id> (--enable-log-requests logs it).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if f"chatcmpl-{request_id}" in log.read_text(errors="replace"):
            return True
        time.sleep(0.5)
    return False


def test_request_id_follows_a_query_to_vllm_and_into_its_audit_record(
    inference: Inference, tmp_path: Path
) -> None:
    # Never abstain: this is about the trace, so every question must reach the model.
    overrides = {**inference.overrides, "APPLIANCE__ANSWERING__ABSTAIN_BELOW": "-1"}
    settings = settings_for(tmp_path / "data", **overrides)
    components = Components(settings)
    IngestService.for_components(components).ingest([CORPUS / "vpn-policy.txt"])
    client = api_client(settings, components, role="reader")
    before = scrape(client.get("/metrics").text)

    given = f"trace-{uuid.uuid4().hex[:8]}"
    response = client.post(
        "/v1/query",
        json={"question": "How long until a VPN session expires?"},
        headers={"X-Request-ID": given},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == given

    # No id offered: the API makes one, returns it, and it travels the same way.
    response = client.post("/v1/query", json={"question": "Who approves VPN access?"})
    assert response.status_code == 200, response.text
    made = response.headers["X-Request-ID"]
    assert made != given and len(made) == 32

    records = components.audit.records(kind="query")
    assert [record.payload["request_id"] for record in records] == [given, made]
    assert _vllm_logged(inference.log, given), f"chatcmpl-{given} not in {inference.log}"
    assert _vllm_logged(inference.log, made)

    after = scrape(client.get("/metrics").text)
    for name in (
        "appliance_llm_time_to_first_token_seconds_count",
        "appliance_llm_tokens_per_second_count",
        'appliance_retrieval_seconds_count{mode="hybrid"}',
    ):
        assert after[name] - before.get(name, 0.0) == 2, name
    assert after["appliance_audit_records_total"] == records[-1].seq
