"""The audit log on SQLite: the chain verifies, and each kind of tampering is named with its seq."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.audit.key import AuditKey, AuditKeyUnsafe
from appliance.audit.log import AuditLog, AuditLogBroken
from appliance.audit.record import AuditRecord
from tests.audit_appenders import append_concurrently, switches
from tests.conftest import ROOT, settings_for


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "audit.sqlite3", tmp_path / "secrets" / "audit.key"


@pytest.fixture
def log(paths: tuple[Path, Path]) -> AuditLog:
    return AuditLog.open("", *paths)


def fill(log: AuditLog, count: int = 20) -> list[AuditRecord]:
    users = ["alice", "bob"]
    return [
        log.append(
            "query" if n % 3 else "ingest",
            users[n % 2],
            ["everyone", "eng"],
            {"question": f"question {n}", "retrieved": [{"doc_id": f"doc{n % 4}", "score": 0.5}]},
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture
def raw(paths: tuple[Path, Path]) -> Iterator[sqlite3.Connection]:
    """What someone with write access to the database file, but not the key, can do."""
    connection = sqlite3.connect(paths[0], isolation_level=None)
    yield connection
    connection.close()


def found(log: AuditLog) -> list[tuple[int, str]]:
    return [(problem.seq, problem.kind) for problem in log.verify().problems]


def test_an_intact_chain_verifies(log: AuditLog) -> None:
    written = fill(log)
    report = log.verify()
    assert report.ok and report.problems == []
    assert (report.checked, report.first_seq, report.last_seq, report.head_seq) == (20, 1, 20, 20)
    assert [record.seq for record in written] == list(range(1, 21))
    assert all(after.prev_hash == before.hash for before, after in itertools.pairwise(written))
    assert log.records() == written
    assert log.head() is not None and log.head().hash == written[-1].hash


def test_a_fresh_log_verifies_empty(log: AuditLog) -> None:
    report = log.verify()
    assert report.ok and report.checked == 0 and report.head_seq == 0


def test_an_edited_payload_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log)
    raw.execute("""UPDATE audit_records SET payload = '{"question":"nothing"}' WHERE seq = 7""")
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(7, "edited")]
    assert "seq 7" in report.problems[0].message


def test_an_edit_that_breaks_the_json_is_named_too(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log, 5)
    raw.execute("UPDATE audit_records SET payload = '{not json' WHERE seq = 2")
    assert found(log) == [(2, "edited")]


def test_a_deleted_record_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log)
    raw.execute("DELETE FROM audit_records WHERE seq = 5")
    raw.execute("DELETE FROM audit_records WHERE seq IN (11, 12, 13)")
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(5, "deleted"), (11, "deleted")]
    assert "seqs 11 to 13 were deleted" in report.problems[1].message


def test_swapped_records_are_named_as_reordered(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log)
    columns = "at, kind, actor, actor_groups, payload, doc_ids, prev_hash, hash, signature"
    four, nine = (
        raw.execute(f"SELECT {columns} FROM audit_records WHERE seq = ?", (seq,)).fetchone()
        for seq in (4, 9)
    )
    assignments = ", ".join(f"{name} = ?" for name in columns.split(", "))
    raw.execute(f"UPDATE audit_records SET {assignments} WHERE seq = 4", nine)
    raw.execute(f"UPDATE audit_records SET {assignments} WHERE seq = 9", four)
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(4, "reordered"), (9, "reordered")]
    assert "written as seq 9" in report.problems[0].message
    assert "written as seq 4" in report.problems[1].message


def test_renumbered_neighbours_are_reordered(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log)
    raw.execute("UPDATE audit_records SET seq = -1 WHERE seq = 3")
    raw.execute("UPDATE audit_records SET seq = 3 WHERE seq = 4")
    raw.execute("UPDATE audit_records SET seq = 4 WHERE seq = -1")
    assert found(log) == [(3, "reordered"), (4, "reordered")]


def test_a_deletion_hidden_by_renumbering_is_still_a_deletion(
    log: AuditLog, raw: sqlite3.Connection
) -> None:
    fill(log, 10)
    raw.execute("DELETE FROM audit_records WHERE seq = 6")
    for seq in range(7, 11):
        raw.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (seq - 1, seq))
    problems = found(log)
    assert (6, "deleted") in problems
    assert [seq for seq, kind in problems if kind == "reordered"] == [6, 7, 8, 9]
    assert not [kind for _, kind in problems if kind == "truncated"]


def test_a_truncated_tail_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log)
    raw.execute("DELETE FROM audit_records WHERE seq > 17")
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(18, "truncated")]
    assert "seqs 18 to 20" in report.problems[0].message
    # Appending chains on from the signed head, so the cut stays visible, now in the middle.
    log.append("query", "alice", [], {})
    assert found(log) == [(18, "deleted")]


def test_a_truncation_that_rewinds_the_head_shows_and_stops_appends(
    log: AuditLog, raw: sqlite3.Connection
) -> None:
    written = fill(log)
    raw.execute("DELETE FROM audit_records WHERE seq > 17")
    raw.execute("UPDATE audit_head SET seq = 17, hash = ?", (written[16].hash,))
    assert found(log) == [(17, "head")]
    with pytest.raises(AuditLogBroken):
        log.append("query", "alice", [], {})
    raw.execute("DELETE FROM audit_head")
    assert found(log) == [(17, "head")]
    # Opening the log again must not write a fresh head over the evidence.
    assert AuditLog(log._db, log._key).head() is None


def test_a_rehashed_edit_is_a_forgery(log: AuditLog, raw: sqlite3.Connection) -> None:
    written = fill(log)
    victim = written[11]
    edited = AuditRecord(**{**victim.to_dict(), "payload": {"question": "harmless"}})
    rehashed = hashlib.sha256(edited.content().encode()).hexdigest()
    raw.execute(
        "UPDATE audit_records SET payload = ?, hash = ? WHERE seq = 12",
        (json.dumps(edited.payload), rehashed),
    )
    report = log.verify()
    assert [(p.seq, p.kind) for p in report.problems] == [(12, "forged")]
    assert "not signed with this appliance's key" in report.problems[0].message


def test_a_record_added_without_the_key_is_forged_and_after_the_head(
    log: AuditLog, raw: sqlite3.Connection
) -> None:
    written = fill(log, 5)
    fake = AuditRecord(6, written[-1].at, "query", "mallory", [], {}, written[-1].hash, "", "")
    raw.execute(
        "INSERT INTO audit_records VALUES (6, ?, 'query', 'mallory', '[]', '{}', '', ?, ?, ?)",
        (fake.at, fake.prev_hash, fake.content_hash(), "0" * 64),
    )
    assert sorted(found(log)) == [(6, "forged"), (6, "inserted")]


def test_another_appliances_key_verifies_nothing(log: AuditLog, tmp_path: Path) -> None:
    fill(log, 3)
    other = AuditLog(log._db, AuditKey(b"k" * 32))
    assert {kind for _, kind in found(other)} == {"forged", "head"}


def test_a_changed_document_index_is_named(log: AuditLog, raw: sqlite3.Connection) -> None:
    fill(log, 5)
    raw.execute("UPDATE audit_records SET doc_ids = '' WHERE seq = 3")
    assert found(log) == [(3, "index")]


def test_purge_keeps_the_rest_verifiable(log: AuditLog, raw: sqlite3.Connection) -> None:
    written = fill(log)
    cutoff = datetime.fromisoformat(written[10].at)
    assert log.purge(cutoff, actor="root") == 10
    report = log.verify()
    assert report.ok, report.problems
    assert report.checkpoint_seq == 11 and report.first_seq == 11
    last = log.records()[-1]
    assert (last.seq, last.kind, last.actor) == (21, "audit_purged", "root")
    assert last.payload["purged"] == 10 and last.payload["first_kept_seq"] == 11
    assert log.purge(cutoff) == 0
    log.append("query", "alice", [], {})
    assert log.verify().ok

    raw.execute("DELETE FROM audit_records WHERE seq = 11")
    assert found(log) == [(11, "deleted")]


def test_tampering_with_the_checkpoint_shows(log: AuditLog, raw: sqlite3.Connection) -> None:
    written = fill(log)
    log.purge(datetime.fromisoformat(written[5].at))
    raw.execute("UPDATE audit_checkpoints SET purged = 1")
    problems = found(log)
    assert (6, "checkpoint") in problems
    # Without a genuine checkpoint the purged seqs count as deleted.
    assert (1, "deleted") in problems
    raw.execute("DELETE FROM audit_checkpoints")
    assert found(log) == [(1, "deleted")]


def test_purging_everything_still_verifies(log: AuditLog) -> None:
    fill(log, 4)
    assert log.purge(datetime.now(UTC) + timedelta(days=1)) == 4
    report = log.verify()
    assert report.ok and report.checkpoint_seq == 5 and report.checked == 1
    assert log.records()[0].kind == "audit_purged"


def test_export_round_trips_as_jsonl_and_csv(log: AuditLog) -> None:
    written = fill(log, 6)
    lines = io.StringIO()
    assert log.export(lines, fmt="jsonl") == 6
    from_jsonl = [AuditRecord.from_dict(json.loads(line)) for line in lines.getvalue().splitlines()]
    assert from_jsonl == written

    table = io.StringIO()
    since, until = datetime.fromisoformat(written[1].at), datetime.fromisoformat(written[4].at)
    assert log.export(table, since=since, until=until, fmt="csv") == 3
    rows = list(csv.DictReader(io.StringIO(table.getvalue())))
    from_csv = [AuditRecord.from_csv_row(row) for row in rows]
    assert from_csv == written[1:4]
    # What is exported can be re-hashed by anyone: it is the exact content that was signed.
    assert all(record.content_hash() == record.hash for record in from_csv)


def test_search_by_user_kind_document_and_time(log: AuditLog) -> None:
    written = fill(log, 12)
    log.append("delete", "carol", [], {"doc_id": "doc10", "path": "/srv/x.txt"})
    assert [r.seq for r in log.records(actor="alice")] == [2, 4, 6, 8, 10, 12]
    assert [r.seq for r in log.records(kind="ingest")] == [3, 6, 9, 12]
    assert [r.seq for r in log.records(actor="bob", kind="ingest")] == [3, 9]
    # doc1 must not match doc10, nor DOC1 doc1: exact ids only.
    assert [r.seq for r in log.records(doc_id="doc1")] == [1, 5, 9]
    assert [r.seq for r in log.records(doc_id="doc10")] == [13]
    assert log.records(doc_id="DOC1") == []
    since, until = datetime.fromisoformat(written[2].at), datetime.fromisoformat(written[5].at)
    assert [r.seq for r in log.records(since=since, until=until)] == [3, 4, 5]
    assert [r.seq for r in log.records(limit=2)] == [12, 13]
    assert log.records(since=datetime.now(UTC) + timedelta(minutes=1)) == []


def test_payloads_come_back_as_stored(log: AuditLog) -> None:
    record = log.append("egress", "bob", ("eng",), {"to": "api.cohere.com", "n": (1, 2), "é": 1.5})
    assert record.payload == {"to": "api.cohere.com", "n": [1, 2], "é": 1.5}
    assert log.records() == [record]
    with pytest.raises(ValueError):
        log.append("egress", "bob", [], {"score": float("nan")})
    with pytest.raises(TypeError):
        log.append("egress", "bob", [], {"when": datetime.now(UTC)})
    assert log.head() is not None and log.head().seq == 1


def test_the_key_is_made_once_and_readable_by_its_owner_only(paths: tuple[Path, Path]) -> None:
    key_path = paths[1]
    AuditLog.open("", *paths)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    secret = key_path.read_bytes()
    assert len(secret) == 32
    AuditLog.open("", *paths)
    assert key_path.read_bytes() == secret
    assert secret.hex() not in repr(AuditKey.load_or_create(key_path))
    key_path.chmod(0o640)
    with pytest.raises(AuditKeyUnsafe, match="chmod 600"):
        AuditKey.load_or_create(key_path)


def test_settings_place_the_log_and_key_in_the_data_dir(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    assert settings.audit.url == "" and settings.audit.retention_days == 365
    assert settings.audit_path == tmp_path / "data" / "audit.sqlite3"
    assert settings.audit_key_path == tmp_path / "data" / "secrets" / "audit.key"
    AuditLog.for_settings(settings).append("query", "alice", [], {})
    assert settings.audit_path.is_file() and settings.audit_key_path.is_file()
    shared = settings_for(tmp_path / "data", APPLIANCE_AUDIT_URL="postgresql+psycopg://db/audit")
    assert shared.audit.url == "postgresql+psycopg://db/audit"


def test_processes_appending_at_once_keep_one_chain(
    paths: tuple[Path, Path], tmp_path: Path
) -> None:
    AuditLog.open("", *paths)
    append_concurrently("", *paths, tmp_path, processes=2, each=100)
    log = AuditLog.open("", *paths)
    report = log.verify()
    assert report.ok, report.problems
    assert report.checked == 200
    actors = [record.actor for record in log.records()]
    assert actors.count("p0") == actors.count("p1") == 100
    assert switches(actors) > 10, "the two processes did not append at the same time"


def test_the_cli_verifies_exports_and_fails_on_tampering(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "data")
    log = AuditLog.for_settings(settings)
    fill(log, 3)
    environ = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    environ |= {"APPLIANCE_DATA_DIR": str(tmp_path / "data"), "APPLIANCE_PROFILES": "embedded"}

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(ROOT / ".venv" / "bin" / "appliance"), "audit", *arguments]
        return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120)

    intact = cli("verify")
    assert intact.returncode == 0, intact.stderr
    assert "audit log intact: 3 records checked" in intact.stdout
    out = tmp_path / "november.csv"
    exported = cli("export", "--from", "2026-01-01", "--format", "csv", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [row["seq"] for row in csv.DictReader(out.open())] == ["1", "2", "3"]

    with sqlite3.connect(settings.audit_path) as connection:
        connection.execute("DELETE FROM audit_records WHERE seq = 2")
    tampered = cli("verify", "--json")
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["problems"] == [
        {"seq": 2, "kind": "deleted", "message": "seq 2 was deleted"}
    ]
