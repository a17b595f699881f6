"""The audit log's store: append under a lock, verify the chain, search, export and purge.

Each record's hash covers its content and the previous record's hash; an HMAC-SHA256 signature
with a key only the service can read covers each hash. A signed head (last seq and its hash) is
rewritten in the same transaction as every append, so records cut off the end show too. A purge
leaves a signed checkpoint naming the first record kept and the hash it chains from.

Appends from several processes form one chain: each takes the log's write lock before reading
the head (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE on the head row).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from sqlalchemy import Connection, Row, text

from appliance.audit.key import AuditKey
from appliance.audit.record import (
    CSV_COLUMNS,
    GENESIS_HASH,
    AuditHead,
    AuditRecord,
    Checkpoint,
    canonical_json,
    document_ids,
    utc_text,
)
from appliance.audit.verify import ChainCheck, VerifyReport
from appliance.database import Database
from appliance.errors import ApplianceError
from appliance.settings import Settings

# Payloads are stored as the exact text that was hashed (not JSONB, which would reorder keys).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_records (
    seq           BIGINT PRIMARY KEY,
    at            TEXT NOT NULL,      -- UTC, fixed width: text order is time order
    kind          TEXT NOT NULL,
    actor         TEXT NOT NULL,
    actor_groups  TEXT NOT NULL,      -- JSON list
    payload       TEXT NOT NULL,      -- canonical JSON
    doc_ids       TEXT NOT NULL,      -- the documents the payload names, each between two US
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL,
    signature     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_records_at ON audit_records (at);
CREATE INDEX IF NOT EXISTS audit_records_actor ON audit_records (actor, at);
CREATE INDEX IF NOT EXISTS audit_records_kind ON audit_records (kind, at);
CREATE TABLE IF NOT EXISTS audit_head (
    id            INTEGER PRIMARY KEY,  -- always 1
    seq           BIGINT NOT NULL,
    hash          TEXT NOT NULL,
    signature     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    seq           BIGINT PRIMARY KEY,   -- the first record a purge kept
    prev_hash     TEXT NOT NULL,        -- the hash it chains from (the last purged record's)
    at            TEXT NOT NULL,
    purged        BIGINT NOT NULL,
    signature     TEXT NOT NULL
)
"""
_COLUMNS = "seq, at, kind, actor, actor_groups, payload, prev_hash, hash, signature, doc_ids"
# The ASCII unit separator: document ids never hold it, so a search cannot match across two.
_SEPARATOR = "\x1f"
ExportFormat = Literal["jsonl", "csv"]


class AuditLogBroken(ApplianceError):
    """Nothing more can be recorded safely; raised instead of writing an unverifiable record."""

    status_code = 503


def _doc_ids_column(ids: list[str]) -> str:
    return f"{_SEPARATOR}{_SEPARATOR.join(ids)}{_SEPARATOR}" if ids else ""


def _json_or_raw(stored: str, raw_key: str) -> Any:
    # A row edited into invalid JSON must still be reported by verify, not crash it.
    try:
        return json.loads(stored)
    except (TypeError, ValueError):
        return {raw_key: stored}


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        groups=_json_or_raw(row.actor_groups, "unreadable groups"),
        payload=_json_or_raw(row.payload, "unreadable payload"),
        prev_hash=row.prev_hash,
        hash=row.hash,
        signature=row.signature,
    )


class AuditLog:
    def __init__(self, database: Database, key: AuditKey) -> None:
        self._db = database
        self._key = key
        self._lock_head = " FOR UPDATE" if database.dialect == "postgresql" else ""
        self._contains = "strpos" if database.dialect == "postgresql" else "instr"
        self._start()

    @classmethod
    def open(cls, url: str, sqlite_path: Path, key_path: Path) -> AuditLog:
        """The log at `url`, or in SQLite at `sqlite_path` when url is empty."""
        return cls(Database.at(url, sqlite_path, _SCHEMA), AuditKey.load_or_create(key_path))

    @classmethod
    def for_settings(cls, settings: Settings) -> AuditLog:
        return cls.open(settings.audit.url, settings.audit_path, settings.audit_key_path)

    def _start(self) -> None:
        """Writes the head of an empty log, never of one that has records or checkpoints.

        A head deleted from a used log must stay missing for verify to report it.
        """
        with self._db.transaction() as connection:
            if connection.execute(text("SELECT 1 FROM audit_head WHERE id = 1")).first():
                return
        with self._db.transaction(immediate=True) as connection:
            used = connection.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM audit_records)"
                    " OR EXISTS (SELECT 1 FROM audit_checkpoints)"
                    " OR EXISTS (SELECT 1 FROM audit_head)"
                )
            ).scalar()
            if not used:
                self._write_head(connection, 0, GENESIS_HASH, insert=True)

    # ------------------------------------------------------------ writing

    def append(
        self, kind: str, actor: str, groups: Iterable[str], payload: Mapping[str, Any]
    ) -> AuditRecord:
        """Records one event; returns it as stored (payload as read back from its JSON)."""
        if not kind:
            raise ValueError("an audit record needs a kind")
        if not isinstance(payload, Mapping):
            raise TypeError(f"an audit payload is a mapping, not {type(payload).__name__}")
        # A JSON round trip: what is returned and hashed now is what verify will read back.
        content = json.loads(canonical_json(dict(payload)))
        group_list = [str(group) for group in groups]
        with self._db.transaction(immediate=True) as connection:
            head = self._locked_head(connection)
            return self._write(connection, head, kind, str(actor), group_list, content)

    def _locked_head(self, connection: Connection) -> AuditHead:
        row = connection.execute(
            text(f"SELECT seq, hash, signature FROM audit_head WHERE id = 1{self._lock_head}")
        ).first()
        head = AuditHead(int(row[0]), row[1], row[2]) if row else None
        # Chaining on from a forged head would sign over a cut and hide it for good.
        if head is None or not self._key.signed(head.signature, "head", head.message()):
            raise AuditLogBroken(
                "the audit log's signed head is missing or forged, so nothing more is recorded "
                "until an administrator has run `appliance audit verify` and restored the log"
            )
        return head

    def _write(
        self,
        connection: Connection,
        head: AuditHead,
        kind: str,
        actor: str,
        groups: list[str],
        payload: dict[str, Any],
    ) -> AuditRecord:
        draft = AuditRecord(
            seq=head.seq + 1,
            at=utc_text(datetime.now(UTC)),
            kind=kind,
            actor=actor,
            groups=groups,
            payload=payload,
            prev_hash=head.hash,
            hash="",
            signature="",
        )
        digest = draft.content_hash()
        record = replace(draft, hash=digest, signature=self._key.sign("record", digest))
        connection.execute(
            text(
                f"INSERT INTO audit_records ({_COLUMNS}) VALUES (:seq, :at, :kind, :actor,"
                " :groups, :payload, :prev_hash, :hash, :signature, :doc_ids)"
            ),
            {
                **record.to_dict(),
                "groups": canonical_json(record.groups),
                "payload": canonical_json(record.payload),
                "doc_ids": _doc_ids_column(document_ids(record.payload)),
            },
        )
        self._write_head(connection, record.seq, record.hash)
        return record

    def _write_head(
        self, connection: Connection, seq: int, hash_: str, insert: bool = False
    ) -> None:
        signature = self._key.sign("head", AuditHead(seq, hash_, "").message())
        sql = (
            "INSERT INTO audit_head (id, seq, hash, signature) VALUES (1, :seq, :hash, :sig)"
            if insert
            else "UPDATE audit_head SET seq = :seq, hash = :hash, signature = :sig WHERE id = 1"
        )
        connection.execute(text(sql), {"seq": seq, "hash": hash_, "sig": signature})

    def purge(self, older_than: datetime, actor: str = "system") -> int:
        """Deletes the records written before `older_than`; returns how many.

        The cut is made before the first record at or after `older_than`, so what remains is
        one unbroken run; a signed checkpoint says where it starts, and an `audit_purged`
        record in the chain says who purged what.
        """
        cutoff = utc_text(older_than)
        with self._db.transaction(immediate=True) as connection:
            head = self._locked_head(connection)
            first_kept = connection.execute(
                text("SELECT MIN(seq) FROM audit_records WHERE at >= :cutoff"), {"cutoff": cutoff}
            ).scalar()
            first_kept = head.seq + 1 if first_kept is None else int(first_kept)
            purged = connection.execute(
                text("SELECT COUNT(*) FROM audit_records WHERE seq < :seq"), {"seq": first_kept}
            ).scalar_one()
            if not purged:
                return 0
            prev_hash = (
                head.hash
                if first_kept == head.seq + 1
                else connection.execute(
                    text("SELECT hash FROM audit_records WHERE seq = :seq"), {"seq": first_kept - 1}
                ).scalar()
            )
            if prev_hash is None:
                raise AuditLogBroken(
                    f"seq {first_kept - 1}, the last record to purge, is missing: nothing was "
                    "purged; run `appliance audit verify`"
                )
            connection.execute(
                text("DELETE FROM audit_records WHERE seq < :seq"), {"seq": first_kept}
            )
            draft = Checkpoint(first_kept, prev_hash, utc_text(datetime.now(UTC)), purged, "")
            checkpoint = replace(draft, signature=self._key.sign("checkpoint", draft.message()))
            connection.execute(
                text(
                    "INSERT INTO audit_checkpoints (seq, prev_hash, at, purged, signature)"
                    " VALUES (:seq, :prev_hash, :at, :purged, :signature)"
                ),
                asdict(checkpoint),
            )
            self._write(
                connection,
                head,
                "audit_purged",
                actor,
                [],
                {"purged": purged, "first_kept_seq": first_kept, "older_than": cutoff},
            )
        return int(purged)

    # ------------------------------------------------------------ reading

    def head(self) -> AuditHead | None:
        """The signed head; None only when it was deleted."""
        with self._db.transaction() as connection:
            row = connection.execute(
                text("SELECT seq, hash, signature FROM audit_head WHERE id = 1")
            ).first()
        return AuditHead(int(row[0]), row[1], row[2]) if row else None

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        kind: str | None = None,
        doc_id: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Matching records, oldest first; with `limit`, the newest that many.

        `since` is inclusive and `until` exclusive; naive datetimes are UTC. `doc_id` matches a
        payload's `doc_id` or any `retrieved` entry's `doc_id`.
        """
        where, params = self._where(since, until, actor, kind, doc_id)
        if limit is None:
            sql = f"SELECT {_COLUMNS} FROM audit_records{where} ORDER BY seq"
        else:
            sql = f"SELECT {_COLUMNS} FROM audit_records{where} ORDER BY seq DESC LIMIT :limit"
            params["limit"] = limit
        with self._db.transaction() as connection:
            rows = connection.execute(text(sql), params).fetchall()
        found = [_record(row) for row in rows]
        return found if limit is None else found[::-1]

    def _where(
        self,
        since: datetime | None,
        until: datetime | None,
        actor: str | None,
        kind: str | None,
        doc_id: str | None,
    ) -> tuple[str, dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if since is not None:
            clauses.append("at >= :since")
            params["since"] = utc_text(since)
        if until is not None:
            clauses.append("at < :until")
            params["until"] = utc_text(until)
        if actor is not None:
            clauses.append("actor = :actor")
            params["actor"] = actor
        if kind is not None:
            clauses.append("kind = :kind")
            params["kind"] = kind
        if doc_id is not None:
            # instr/strpos, not LIKE: exact and case-sensitive on both databases.
            clauses.append(f"{self._contains}(doc_ids, :doc_needle) > 0")
            params["doc_needle"] = _doc_ids_column([doc_id])
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def _stream(self, connection: Connection, where: str, params: dict[str, Any]) -> Iterator[Row]:
        statement = text(f"SELECT {_COLUMNS} FROM audit_records{where} ORDER BY seq")
        # Streamed in batches, so exporting or verifying millions of records holds a few.
        yield from connection.execute(statement.execution_options(yield_per=1000), params)

    def export(
        self,
        stream: TextIO,
        since: datetime | None = None,
        until: datetime | None = None,
        fmt: ExportFormat = "jsonl",
    ) -> int:
        """Writes the records in [since, until) with their hashes and signatures; returns how many.

        jsonl: one record per line. csv: a header, then groups and payload as canonical JSON.
        """
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"export format {fmt!r} is not jsonl or csv")
        where, params = self._where(since, until, None, None, None)
        writer = csv.writer(stream) if fmt == "csv" else None
        if writer:
            writer.writerow(CSV_COLUMNS)
        count = 0
        with self._db.transaction() as connection:
            for row in self._stream(connection, where, params):
                record = _record(row)
                if writer:
                    writer.writerow(record.csv_row())
                else:
                    stream.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                count += 1
        return count

    def verify(self) -> VerifyReport:
        """Checks every record, the signed head and the checkpoints, as of one moment."""
        with self._db.snapshot() as connection:
            row = connection.execute(
                text("SELECT seq, hash, signature FROM audit_head WHERE id = 1")
            ).first()
            head = AuditHead(int(row[0]), row[1], row[2]) if row else None
            checkpoints = [
                Checkpoint(int(seq), prev_hash, at, int(purged), signature)
                for seq, prev_hash, at, purged, signature in connection.execute(
                    text("SELECT seq, prev_hash, at, purged, signature FROM audit_checkpoints")
                )
            ]
            check = ChainCheck(self._key, head, checkpoints)
            for stored in self._stream(connection, "", {}):
                check.add(_record(stored), [i for i in stored.doc_ids.split(_SEPARATOR) if i])
        return check.finish()
