"""Several OS processes appending to one audit log at once, as several API nodes would."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

# Each process says it is ready, then waits for the go file, so all of them append during the
# same stretch of time rather than one after the other as they finish importing.
_APPENDER = """
import sys, time
from pathlib import Path
from appliance.audit.log import AuditLog

url, sqlite_path, key_path, name, count, go = sys.argv[1:7]
log = AuditLog.open(url, Path(sqlite_path), Path(key_path))
Path(go + "." + name).touch()
while not Path(go).exists():
    time.sleep(0.005)
for n in range(int(count)):
    log.append("query", name, ["everyone"], {"n": n, "doc_id": f"{name}-{n % 7}"})
    # A request's worth of other work between appends, as on an API node: without it SQLite's
    # busy wait lets one process take the lock again and again while the other sleeps.
    time.sleep(0.002)
"""


def append_concurrently(
    url: str, sqlite_path: Path, key_path: Path, folder: Path, processes: int, each: int
) -> None:
    """Starts `processes` appenders (actors p0, p1, ...), each appending `each` records."""
    go = folder / "go"
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _APPENDER,
                url,
                str(sqlite_path),
                str(key_path),
                f"p{n}",
                str(each),
                str(go),
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    deadline = time.monotonic() + 120
    while not all(go.with_name(f"go.p{n}").exists() for n in range(processes)):
        assert time.monotonic() < deadline, "the appenders did not start"
        assert all(child.poll() is None for child in children), "an appender died at start"
        time.sleep(0.05)
    go.touch()
    failures = []
    for child in children:
        _, error = child.communicate(timeout=300)
        if child.returncode:
            failures.append(error)
    assert not failures, "\n".join(failures)


def switches(actors: list[str]) -> int:
    """How often the writer changes along the chain: 1 would mean one ran after the other."""
    return sum(1 for before, after in itertools.pairwise(actors) if before != after)
