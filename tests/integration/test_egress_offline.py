"""A real ingest and retrieval under the armed egress guard open no connection off this machine."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.egress import arm_from_settings, guard
from appliance.egress.policy import is_local, parse_ip
from appliance.retrieval.dense import DenseRetriever
from appliance.settings import Settings
from ingest.service import IngestService
from tests.conftest import CORPUS, ROOT

# Written by a second audit hook, independent of the guard, so the test does not take the
# guard's word for what was attempted.
_seen: list[tuple[str, str]] | None = None


def _record(event: str, args: tuple[Any, ...]) -> None:
    if _seen is None or not event.startswith("socket."):
        return
    if event in ("socket.connect", "socket.sendto") and args[0].family != socket.AF_UNIX:
        _seen.append((event, str(args[1][0])))
    elif event == "socket.getaddrinfo" and args[0]:
        host = args[0]
        _seen.append((event, host.decode() if isinstance(host, bytes) else str(host)))


sys.addaudithook(_record)


@pytest.fixture
def attempts(settings: Settings) -> Iterator[list[tuple[str, str]]]:
    """Every host this process tried to reach while the guard was armed from `settings`."""
    global _seen
    refused: list[str] = []
    remove = guard.add_listener(lambda destination, host, port: refused.append(destination))
    assert arm_from_settings(settings) is not None
    _seen = []
    try:
        yield _seen
    finally:
        _seen = None
        guard.disarm()
        remove()
    assert refused == []


def _on_this_machine(host: str) -> bool:
    ip = parse_ip(host)
    return is_local(ip) if ip is not None else host == "localhost"


def test_ingest_and_retrieval_stay_on_this_machine(
    settings: Settings, attempts: list[tuple[str, str]], tmp_path: Path
) -> None:
    refused_before = guard.refused
    corpus = shutil.copytree(CORPUS, tmp_path / "corpus")
    components = Components(settings)
    report = IngestService.for_components(components).ingest([corpus])
    assert report.count("indexed") == 5 and report.count("failed") == 0
    hits = DenseRetriever(components.chunk_store, components.embedder).retrieve(
        "Which telephone extension is the incident bridge on?", 4, Principal.local("test")
    )
    assert Path(hits[0].path).name == "incident-response.pdf"
    assert [host for _, host in attempts if not _on_this_machine(host)] == []
    assert guard.refused == refused_before


# What the child runs: the same ingest and retrieval, armed from settings as an entry point is.
_CHILD = """
import sys
from pathlib import Path

def _note_lookups(event, args):
    # Every process forked from this one inherits the hook (OpenVINO's telemetry posts from one).
    if event == "socket.getaddrinfo" and args[0]:
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        with open(sys.argv[2], "a") as lookups:
            lookups.write(host + "\\n")

sys.addaudithook(_note_lookups)
from appliance.settings import load_settings
from appliance.egress import arm_from_settings
settings = load_settings()
arm_from_settings(settings)
from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.auth.principal import Principal
from appliance.retrieval.dense import DenseRetriever
from ingest.service import IngestService
components = Components(settings)
report = IngestService.for_components(components).ingest([Path(sys.argv[1])])
assert report.count("indexed") == 5, report
DenseRetriever(components.chunk_store, components.embedder).retrieve(
    "incident bridge", 4, Principal.local("probe")
)
"""
# Variables by which libraries recognise a CI job and keep their telemetry quiet.
_CI_MARKERS = frozenset({"CI", "TF_BUILD", "JENKINS_URL", "GITHUB_ACTIONS"})
_INET_CONNECT = re.compile(
    r"(?:connect|sendto)\(\d+, \{sa_family=AF_INET6?, (?:sin6?_port=htons\((?P<port>\d+)\), )?"
    r".*?(?:inet_addr\(\"|inet_pton\(AF_INET6, \")(?P<ip>[^\"]+)\""
)


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_no_connection_leaves_even_from_native_code(tmp_path: Path) -> None:
    """The audit hook cannot see sockets opened in C (onnxruntime's telemetry is one): the kernel's
    view of every connect() and sendto() of the same ingest and retrieval must show none either.

    The child runs as on a user's machine, not as in CI: several libraries (OpenVINO's telemetry,
    loaded by the default embedder) stay quiet only when they see CI=true, and only until they
    have written a consent file in $HOME, so both are taken away from it."""
    corpus = shutil.copytree(CORPUS, tmp_path / "corpus")
    trace, lookups, home = tmp_path / "trace.txt", tmp_path / "lookups.txt", tmp_path / "home"
    home.mkdir()
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("APPLIANCE") and key not in _CI_MARKERS
    }
    environ |= {
        "APPLIANCE_PROFILES": "embedded,test",
        "APPLIANCE_DATA_DIR": str(tmp_path / "d"),
        "HOME": str(home),
    }
    command = ["strace", "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(trace)]
    child = subprocess.run(
        [*command, sys.executable, "-c", _CHILD, str(corpus), str(lookups)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )
    if child.returncode != 0 and "ptrace" in child.stderr:
        pytest.skip(f"strace is not permitted here: {child.stderr.strip()[:200]}")
    assert child.returncode == 0, child.stderr[-2000:]
    leaks = [
        line
        for line in trace.read_text().splitlines()
        if (found := _INET_CONNECT.search(line)) and not _on_this_machine(found["ip"])
    ]
    assert leaks == []
    # What the guard refused never reached the kernel, so the trace cannot show it: the guard's
    # own log line and the lookups seen by the child's hook must show no attempt either.
    assert "egress refused" not in child.stderr
    looked_up = lookups.read_text().split() if lookups.exists() else []
    assert [host for host in looked_up if not _on_this_machine(host)] == []
    # OpenVINO writes its client id and stats under ~/intel when it means to send them.
    assert not (home / "intel").exists()
