"""The Cohere connector: off by default, and when on, only allowed collections reach it, audited.

Cohere's cloud cannot be reached from here: `tests/fakes/cohere_standin.py` is a STAND-IN that
speaks its v2 HTTP API on loopback, and the official SDK is pointed at it with its base URL.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.connectors.cohere import CohereConnector, build_cohere_connector
from appliance.egress import EgressPolicy, arm_from_settings, guard, hosts_from_settings
from appliance.errors import ConnectorUnavailable, EgressDenied
from appliance.settings import Settings
from tests.conftest import ROOT, settings_for
from tests.fakes.cohere_standin import CohereStandIn

PASSAGES = [
    ("doc1:v1:0", "The incident bridge is on telephone extension 4711."),
    ("doc2:v1:0", "The canteen serves lunch from noon."),
]
QUESTION = "Which extension is the incident bridge on?"


@pytest.fixture
def standin() -> Iterator[CohereStandIn]:
    with CohereStandIn() as running:
        yield running


@pytest.fixture(autouse=True)
def _disarm_afterwards() -> Iterator[None]:
    yield
    guard.disarm()


def enabled_settings(tmp_path: Path, base_url: str, **overrides: str) -> Settings:
    key = tmp_path / "cohere.key"
    key.write_text("standin-key\n")
    prefix = "APPLIANCE__CONNECTORS__COHERE__"
    enabled = {
        f"{prefix}ENABLED": "true",
        f"{prefix}BASE_URL": base_url,
        f"{prefix}API_KEY_FILE": str(key),
        f"{prefix}USE_FOR": "[rerank, generate]",
        f"{prefix}ALLOWED_COLLECTIONS": "[public]",
    }
    return settings_for(tmp_path / "data", **(enabled | overrides))


def connected(settings: Settings) -> tuple[CohereConnector, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []
    connector = build_cohere_connector(settings.connectors.cohere, calls.append)
    assert connector is not None
    return connector, calls


def test_off_by_default_and_the_guard_refuses_cohere(settings: Settings) -> None:
    assert settings.connectors.cohere.enabled is False
    assert build_cohere_connector(settings.connectors.cohere) is None
    arm_from_settings(settings)
    import cohere

    # Even the SDK used directly, behind the connector's back, does not get out.
    client = cohere.ClientV2(api_key="not-a-key", timeout=2, max_retries=0)
    with pytest.raises(EgressDenied, match=r"api\.cohere\.com:443"):
        client.rerank(model="rerank-v3.5", query="q", documents=["d"])


def test_the_core_does_not_import_the_sdk_while_the_connector_is_off() -> None:
    program = (
        "import sys\n"
        "from appliance.settings import load_settings\n"
        "from appliance.egress import arm_from_settings\n"
        "from appliance.connectors.cohere import build_cohere_connector\n"
        "settings = load_settings()\n"
        "arm_from_settings(settings)\n"
        "assert build_cohere_connector(settings.connectors.cohere) is None\n"
        "print('cohere' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_allowed_collection_reranks_and_generates_through_the_sdk(
    standin: CohereStandIn, tmp_path: Path
) -> None:
    settings = enabled_settings(tmp_path, standin.base_url)
    arm_from_settings(settings)
    connector, calls = connected(settings)
    assert connector.may_send({"public"})

    ranked = connector.rerank(QUESTION, PASSAGES, 1, collections={"public"})
    assert [chunk_id for chunk_id, _ in ranked] == ["doc1:v1:0"]
    answer = connector.generate("Answer from [1] ...", collections={"public"}, chunk_ids=["c"])
    assert answer.startswith("stand-in answer")

    rerank_request, chat_request = standin.requests
    assert rerank_request.path == "/v2/rerank"
    assert rerank_request.authorization == "Bearer standin-key"
    assert rerank_request.body["query"] == QUESTION
    assert rerank_request.body["documents"] == [text for _, text in PASSAGES]
    assert rerank_request.body["model"] == "rerank-v3.5"
    assert chat_request.path == "/v2/chat"
    assert chat_request.body["messages"] == [{"role": "user", "content": "Answer from [1] ..."}]

    rerank_call, chat_call = calls
    assert {key: rerank_call[key] for key in rerank_call if key != "seconds"} == {
        "endpoint": "/v2/rerank",
        "model": "rerank-v3.5",
        "question": QUESTION,
        "chunk_ids": ["doc1:v1:0", "doc2:v1:0"],
        "top_n": 1,
        "bytes": len(QUESTION) + sum(len(text) for _, text in PASSAGES),
        "destination": standin.base_url,
        "collections": ["public"],
        "outcome": "ok",
    }
    assert chat_call["endpoint"] == "/v2/chat" and chat_call["model"] == "command-a-03-2025"
    assert chat_call["prompt"] == "Answer from [1] ..." and chat_call["chunk_ids"] == ["c"]


def test_a_question_over_another_collection_never_reaches_cohere(
    standin: CohereStandIn, tmp_path: Path
) -> None:
    connector, calls = connected(enabled_settings(tmp_path, standin.base_url))
    assert not connector.may_send({"hr"})
    assert not connector.may_send({"public", "hr"})
    assert not connector.may_send(set())
    with pytest.raises(EgressDenied, match="hr"):
        connector.rerank(QUESTION, PASSAGES, 2, collections={"hr"})
    with pytest.raises(EgressDenied, match="hr"):
        connector.generate("prompt", collections={"public", "hr"})
    assert standin.requests == [] and calls == []


def test_a_use_the_admin_did_not_enable_is_refused(standin: CohereStandIn, tmp_path: Path) -> None:
    settings = enabled_settings(
        tmp_path, standin.base_url, APPLIANCE__CONNECTORS__COHERE__USE_FOR="[rerank]"
    )
    connector, _ = connected(settings)
    with pytest.raises(EgressDenied, match="generate"):
        connector.generate("prompt", collections={"public"})
    assert standin.requests == []


def test_an_outage_is_a_clear_error_and_still_audited(
    standin: CohereStandIn, tmp_path: Path
) -> None:
    connector, calls = connected(enabled_settings(tmp_path, standin.base_url))
    standin.fail_with = 500
    with pytest.raises(ConnectorUnavailable, match="Cohere did not answer"):
        connector.rerank(QUESTION, PASSAGES, 1, collections={"public"})
    assert len(standin.requests) == 1  # no retry: one call sent, one call audited
    assert calls[0]["outcome"].startswith("failed") and calls[0]["question"] == QUESTION


def test_the_guard_backs_the_connector_up(tmp_path: Path) -> None:
    # Enabled, but the process was armed without Cohere's host: nothing leaves anyway.
    connector, calls = connected(enabled_settings(tmp_path, "http://203.0.113.5:9"))
    guard.arm(EgressPolicy())
    with pytest.raises(EgressDenied, match=r"203\.0\.113\.5:9"):
        connector.rerank(QUESTION, PASSAGES, 1, collections={"public"})
    assert calls[0]["outcome"] == "refused by the egress guard"


def test_a_remote_cohere_host_is_allowed_only_while_the_connector_is_enabled(
    tmp_path: Path,
) -> None:
    remote = "https://cohere-gateway.example.net"
    enabled = enabled_settings(tmp_path, remote)
    half = enabled_settings(
        tmp_path, remote, APPLIANCE__CONNECTORS__COHERE__ALLOWED_COLLECTIONS="[]"
    )
    disabled = settings_for(tmp_path / "data", APPLIANCE__CONNECTORS__COHERE__BASE_URL=remote)
    host = "cohere-gateway.example.net"
    assert hosts_from_settings(enabled)[host] == ["connectors.cohere.base_url"]
    assert host not in hosts_from_settings(half)
    assert host not in hosts_from_settings(disabled)
    # resolve=None: the allowlist is computed without a DNS lookup or a connection.
    assert EgressPolicy.from_settings(enabled, resolve=None).allows_host(host)
    assert not EgressPolicy.from_settings(disabled, resolve=None).allows_host(host)
    assert not EgressPolicy.from_settings(disabled, resolve=None).allows_host("api.cohere.com")


def test_enabling_needs_a_key_file(tmp_path: Path) -> None:
    from appliance.settings import SettingsError

    with pytest.raises(SettingsError, match="api_key_file"):
        settings_for(tmp_path / "data", APPLIANCE__CONNECTORS__COHERE__ENABLED="true")
    settings = enabled_settings(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "cohere.key").write_text("")
    with pytest.raises(SettingsError, match="holds no API key"):
        build_cohere_connector(settings.connectors.cohere)
