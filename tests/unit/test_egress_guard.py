"""The egress guard refuses destinations outside loopback and the settings, before any network."""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from appliance.egress import (
    PHONE_HOME_OFF,
    EgressPolicy,
    arm_from_settings,
    guard,
    hook,
    silence_phone_home,
)
from appliance.egress.policy import IPAddress, parse_ip
from appliance.errors import EgressDenied
from appliance.settings import Settings
from tests.conftest import settings_for

TEST_NET = "203.0.113.5"  # RFC 5737 documentation range: routed nowhere


class Refusals(list[tuple[str, str, int]]):
    """A test listener: what the audit log would be told."""

    def __call__(self, destination: str, host: str, port: int) -> None:
        self.append((destination, host, port))


@pytest.fixture
def refusals() -> Iterator[Refusals]:
    seen = Refusals()
    remove = guard.add_listener(seen)
    yield seen
    remove()
    # The audit hook stays for the life of the process; only its policy can be taken away.
    guard.disarm()


@pytest.fixture
def loopback_only(refusals: Refusals) -> Refusals:
    guard.arm(EgressPolicy())
    return refusals


def test_a_non_allowed_address_is_refused_before_the_kernel_sees_it(
    loopback_only: Refusals,
) -> None:
    before = guard.refused
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Non-blocking, a connect() the kernel received would end at once in
        # BlockingIOError (EINPROGRESS) or an unreachable-network OSError: never EgressDenied.
        sock.setblocking(False)
        with pytest.raises(EgressDenied, match=TEST_NET):
            sock.connect((TEST_NET, 443))
        with pytest.raises(OSError):
            sock.getpeername()
    assert loopback_only == [(f"{TEST_NET}:443", TEST_NET, 443)]
    assert guard.refused == before + 1
    assert guard.recent[-1].event == "socket.connect"


def test_a_host_name_is_refused_at_lookup_even_through_an_http_library(
    loopback_only: Refusals,
) -> None:
    # unstructured's analytics endpoint: httpx must not turn the refusal into a ConnectError.
    with (
        pytest.raises(EgressDenied, match=r"packages\.unstructured\.io"),
        httpx.Client(trust_env=False, timeout=2) as client,
    ):
        client.get("https://packages.unstructured.io/python-telemetry")
    assert loopback_only == [("packages.unstructured.io:443", "packages.unstructured.io", 443)]
    assert guard.recent[-1].event == "socket.getaddrinfo"


def test_udp_datagrams_to_outside_are_refused(loopback_only: Refusals) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        pytest.raises(EgressDenied),
    ):
        sock.sendto(b"x", (TEST_NET, 53))
    assert loopback_only[-1][0] == f"{TEST_NET}:53"


def test_loopback_and_unix_sockets_are_allowed(loopback_only: Refusals, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, port), timeout=2):
                server.accept()[0].close()
        response = _serve_once_over_http(port, server)
        assert response == 200
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as unix_server:
        unix_server.bind(path)
        unix_server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    assert loopback_only == []


def _serve_once_over_http(port: int, server: socket.socket) -> int:
    def answer() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    with httpx.Client(trust_env=False, timeout=2) as client:
        status = client.get(f"http://localhost:{port}/").status_code
    thread.join()
    return status


def _production_like(tmp_path: Path) -> Settings:
    return settings_for(
        tmp_path / "data",
        APPLIANCE__BROKER__URL="redis://redis.cluster.internal:6379/0",
        APPLIANCE__CATALOG__URL=(
            "postgresql+psycopg://app@db1.cluster.internal:5432/app?host=db2.cluster.internal:5433"
        ),
        APPLIANCE__AUDIT__URL="postgresql+psycopg://app@audit.cluster.internal/audit",
        APPLIANCE__INGEST__MODE="celery",
        APPLIANCE__VECTOR_STORE__MODE="chroma_server",
        APPLIANCE__VECTOR_STORE__HOST="chroma.cluster.internal",
        APPLIANCE__LLM__BASE_URL="http://10.20.0.7:8001/v1",
        APPLIANCE__EGRESS__ALLOW_HOSTS="[metrics.cluster.internal, 10.99.0.0/16]",
    )


def _fake_dns(name: str) -> set[IPAddress]:
    table = {"chroma.cluster.internal": "10.30.0.4", "redis.cluster.internal": "10.30.0.5"}
    return {ip} if (ip := parse_ip(table.get(name, ""))) else set()


def test_hosts_named_in_the_settings_are_allowed(refusals: Refusals, tmp_path: Path) -> None:
    policy = EgressPolicy.from_settings(_production_like(tmp_path), resolve=_fake_dns)
    assert policy.reasons["chroma.cluster.internal"] == ("vector_store.host",)
    assert policy.reasons["db2.cluster.internal"] == ("catalog.url",)
    assert policy.reasons["audit.cluster.internal"] == ("audit.url",)
    guard.arm(policy)
    # sys.audit raises the very events sockets raise, so the hook is tested with no network.
    for name in (
        "redis.cluster.internal",
        "db1.cluster.internal",
        "db2.cluster.internal",
        "chroma.cluster.internal",
        "metrics.cluster.internal",
    ):
        sys.audit("socket.getaddrinfo", name, 443, 0, 0, 0)
    with socket.socket() as sock:
        for address in ("10.30.0.4", "10.30.0.5", "10.20.0.7", "10.99.3.4"):
            sys.audit("socket.connect", sock, (address, 443))
        with pytest.raises(EgressDenied):
            sys.audit("socket.connect", sock, ("10.98.0.1", 443))
    with pytest.raises(EgressDenied):
        sys.audit("socket.getaddrinfo", "api.cohere.com", 443, 0, 0, 0)
    assert [host for _, host, _ in refusals] == ["10.98.0.1", "api.cohere.com"]


def test_a_configured_name_that_moved_is_looked_up_again(
    refusals: Refusals, monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = {"api.partner.example": {parse_ip("198.51.100.1")}}
    guard.arm(EgressPolicy.from_hosts({"api.partner.example": ["test"]}, resolve=dns.__getitem__))
    dns["api.partner.example"] = {parse_ip("198.51.100.2")}
    monkeypatch.setattr(hook, "resolve_host", dns.__getitem__)
    monkeypatch.setattr(guard, "_resolved_at", 0.0)
    with socket.socket() as sock:
        sys.audit("socket.connect", sock, ("198.51.100.2", 443))
        # Within a few seconds of a lookup no other is made: a refused loop cannot flood DNS.
        with pytest.raises(EgressDenied):
            sys.audit("socket.connect", sock, ("198.51.100.3", 443))
    assert [host for _, host, _ in refusals] == ["198.51.100.3"]


def test_a_failing_listener_does_not_let_the_attempt_through(refusals: Refusals) -> None:
    def broken(destination: str, host: str, port: int) -> None:
        raise RuntimeError("audit store is down")

    remove = guard.add_listener(broken)
    guard.arm(EgressPolicy())
    try:
        with socket.socket() as sock, pytest.raises(EgressDenied):
            sys.audit("socket.connect", sock, (TEST_NET, 443))
    finally:
        remove()
    assert len(refusals) == 1


def test_disarmed_the_hook_lets_everything_through(refusals: Refusals) -> None:
    guard.arm(EgressPolicy())
    guard.disarm()
    with socket.socket() as sock:
        sys.audit("socket.connect", sock, (TEST_NET, 443))
    assert refusals == []


def test_arming_from_settings_turns_phone_home_off_and_guard_off_is_honoured(
    refusals: Refusals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in PHONE_HOME_OFF:
        monkeypatch.delenv(name, raising=False)
    off = settings_for(tmp_path / "data", APPLIANCE__EGRESS__GUARD="false")
    assert arm_from_settings(off) is None and not guard.armed
    assert {name: os.environ[name] for name in PHONE_HOME_OFF} == PHONE_HOME_OFF
    policy = arm_from_settings(settings_for(tmp_path / "data"))
    assert guard.armed and policy is not None
    # The default settings name only this machine.
    assert policy.names == frozenset() and all(ip.is_loopback for ip in policy.addresses)


def test_allow_hosts_takes_hosts_not_urls(tmp_path: Path) -> None:
    from appliance.settings import SettingsError

    with pytest.raises(SettingsError, match=r"not 'https://x\.example'"):
        settings_for(tmp_path, APPLIANCE__EGRESS__ALLOW_HOSTS="[https://x.example]")
    settings = settings_for(tmp_path, APPLIANCE__EGRESS__ALLOW_HOSTS="['fd00::/8', '::1', 'a.b']")
    assert settings.egress.allow_hosts == ["fd00::/8", "::1", "a.b"]


def test_doctor_reports_the_guard(
    refusals: Refusals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from appliance.cli.main import app

    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("APPLIANCE__EGRESS__ALLOW_HOSTS", "[10.99.0.0/16]")
    result = CliRunner().invoke(app, ["doctor", "--egress", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)[0]["rows"]
    assert rows["guard"].startswith("armed")
    assert rows["allowed 10.99.0.0/16"] == "egress.allow_hosts"
    assert rows["cohere connector"].startswith("off")
    assert rows["refused in this process"] == str(guard.refused)

    monkeypatch.setenv("APPLIANCE__EGRESS__GUARD", "false")
    result = CliRunner().invoke(app, ["doctor", "--egress"])
    assert result.exit_code == 1 and "OFF" in result.stdout


def test_openvino_telemetry_is_declined_in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`import openvino` sends usage data unless it finds CI=true or a consent file in $HOME."""
    pytest.importorskip("openvino_telemetry")
    # A fresh copy of the checker, as on a user's machine: no CI variable, no consent file.
    checker = importlib.reload(importlib.import_module("openvino_telemetry.utils.opt_in_checker"))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert checker.OptInChecker().check(False, True) is checker.ConsentCheckResult.NO_FILE
    silence_phone_home()
    assert checker.OptInChecker().check(False, True) is checker.ConsentCheckResult.DECLINED
