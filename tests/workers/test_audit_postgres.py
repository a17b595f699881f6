"""The audit log on a real PostgreSQL shared by several API nodes: one chain, tampering named."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from appliance.audit.log import AuditLog
from tests.audit_appenders import append_concurrently, switches
from tests.workers.conftest import PostgresServer

pytestmark = pytest.mark.e2e


def test_two_processes_appending_at_once_keep_one_valid_chain(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.new_database()
    key = tmp_path / "secrets" / "audit.key"
    unused = tmp_path / "unused.sqlite3"
    AuditLog.open(url, unused, key)
    append_concurrently(url, unused, key, tmp_path, processes=2, each=200)
    log = AuditLog.open(url, unused, key)
    report = log.verify()
    assert report.ok, report.problems
    assert (report.checked, report.first_seq, report.last_seq, report.head_seq) == (
        400,
        1,
        400,
        400,
    )
    records = log.records()
    actors = [record.actor for record in records]
    assert actors.count("p0") == actors.count("p1") == 200
    assert switches(actors) > 10, "the two processes did not append at the same time"
    assert [record.seq for record in log.records(actor="p1", doc_id="p1-3")] == [
        record.seq for record in records if record.actor == "p1" and record.payload["n"] % 7 == 3
    ]
    assert not unused.exists()


def test_tampering_on_postgresql_is_named(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.new_database()
    log = AuditLog.open(url, tmp_path / "unused.sqlite3", tmp_path / "audit.key")
    for n in range(1, 31):
        log.append("query", "alice", ["everyone"], {"question": f"q{n}", "doc_id": f"d{n}"})
    assert log.verify().ok
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("""UPDATE audit_records SET payload = '{"question":"x"}' WHERE seq = 4""")
        )
        connection.execute(text("DELETE FROM audit_records WHERE seq = 10"))
        connection.execute(text("UPDATE audit_records SET seq = -1 WHERE seq = 15"))
        connection.execute(text("UPDATE audit_records SET seq = 15 WHERE seq = 16"))
        connection.execute(text("UPDATE audit_records SET seq = 16 WHERE seq = -1"))
        connection.execute(text("DELETE FROM audit_records WHERE seq > 27"))
    engine.dispose()
    report = log.verify()
    assert [(problem.seq, problem.kind) for problem in report.problems] == [
        (4, "edited"),
        (10, "deleted"),
        (15, "reordered"),
        (16, "reordered"),
        (28, "truncated"),
    ]


def test_purge_on_postgresql_keeps_the_rest_verifiable(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.new_database()
    log = AuditLog.open(url, tmp_path / "unused.sqlite3", tmp_path / "audit.key")
    written = [log.append("ingest", "root", [], {"doc_id": f"d{n}"}) for n in range(1, 11)]
    assert log.purge(datetime.fromisoformat(written[6].at), actor="root") == 6
    report = log.verify()
    assert report.ok, report.problems
    assert (report.checkpoint_seq, report.first_seq, report.last_seq) == (7, 7, 11)
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_records WHERE seq = 7"))
    engine.dispose()
    assert [(p.seq, p.kind) for p in log.verify().problems] == [(7, "deleted")]
