"""One audit record, the canonical text its hash covers, its time format, and its export rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

# What the first record chains from: there is nothing before it.
GENESIS_HASH = "0" * 64
CSV_COLUMNS = ("seq", "at", "kind", "actor", "groups", "payload", "prev_hash", "hash", "signature")


def canonical_json(value: Any) -> str:
    """One text per value, so a record read back from any database hashes as it did when written.

    NaN and infinities are refused: they are not JSON and another reader would not round-trip them.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def utc_text(moment: datetime) -> str:
    """UTC with microseconds always written: equal width, so text order is time order in SQL.

    A naive datetime is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_bound(value: str, end: bool = False) -> datetime:
    """A bound of a period given as an ISO date or date-time (UTC unless it names a zone).

    As an `end`, a bare date means the end of that day: --to 2026-11-30 includes November 30th.
    Raises ValueError for anything else.
    """
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return datetime.fromisoformat(value)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def document_ids(payload: Mapping[str, Any]) -> list[str]:
    """The documents a payload names: its `doc_id`, and each `retrieved` entry's `doc_id`."""
    found = [payload.get("doc_id")]
    retrieved = payload.get("retrieved")
    if isinstance(retrieved, list):
        found += [item.get("doc_id") for item in retrieved if isinstance(item, dict)]
    return sorted({doc_id for doc_id in found if isinstance(doc_id, str) and doc_id})


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str  # UTC, ISO 8601 (utc_text)
    kind: str  # query, ingest, delete, key_created, auth_failed, egress, ... (not a closed set)
    actor: str  # the user id the action is attributed to
    groups: list[str]
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    signature: str  # HMAC-SHA256 of `hash` with the log's key

    def content(self, seq: int | None = None) -> str:
        """The canonical text the hash covers: every field but the hash and the signature.

        `seq` replaces the record's own, to recognise a record moved to another place.
        """
        return canonical_json(
            {
                "seq": self.seq if seq is None else seq,
                "at": self.at,
                "kind": self.kind,
                "actor": self.actor,
                "groups": self.groups,
                "payload": self.payload,
                "prev_hash": self.prev_hash,
            }
        )

    def content_hash(self, seq: int | None = None) -> str:
        return hashlib.sha256(self.content(seq).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> AuditRecord:
        return cls(**{name: document[name] for name in CSV_COLUMNS})

    def csv_row(self) -> list[str | int]:
        """groups and payload as canonical JSON text, so the row can be re-hashed."""
        document = self.to_dict()
        document["groups"] = canonical_json(self.groups)
        document["payload"] = canonical_json(self.payload)
        return [document[name] for name in CSV_COLUMNS]

    @classmethod
    def from_csv_row(cls, row: Mapping[str, str]) -> AuditRecord:
        return cls(
            seq=int(row["seq"]),
            at=row["at"],
            kind=row["kind"],
            actor=row["actor"],
            groups=json.loads(row["groups"]),
            payload=json.loads(row["payload"]),
            prev_hash=row["prev_hash"],
            hash=row["hash"],
            signature=row["signature"],
        )


@dataclass(frozen=True)
class AuditHead:
    """The last seq and its hash, signed: records cut off the end leave it pointing past them."""

    seq: int
    hash: str
    signature: str

    def message(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class Checkpoint:
    """Left by a purge, signed: the first record kept and the hash it chains from."""

    seq: int
    prev_hash: str
    at: str
    purged: int
    signature: str

    def message(self) -> str:
        return canonical_json(
            {"seq": self.seq, "prev_hash": self.prev_hash, "at": self.at, "purged": self.purged}
        )
