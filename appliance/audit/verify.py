"""Checks an audit chain and names, by seq, each record edited, deleted, moved, forged or cut off.

Records are fed in seq order one at a time, so a log of millions is checked in little memory. A
record is intact when its content hashes to its hash and the hash carries the key's signature.
One that is not is judged at the end: a genuine record whose content hashes right under another
seq was moved there (the seq is part of what is hashed); otherwise it was edited (signature
still good) or forged. Seqs that no record holds, in the middle or after the last one the signed
head names, were deleted or truncated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from appliance.audit.key import AuditKey
from appliance.audit.record import GENESIS_HASH, AuditHead, AuditRecord, Checkpoint, document_ids

ProblemKind = Literal[
    "edited",  # content changed after signing
    "forged",  # not signed with this appliance's key
    "reordered",  # a genuine record at another seq than it was written as
    "deleted",  # seqs missing before the last record
    "truncated",  # seqs missing after the last record, up to the signed head
    "inserted",  # a record where none can be: after the head, or before the checkpoint
    "chain",  # two genuine records that do not link: one comes from another copy of the log
    "head",  # the signed head is missing, forged, or names another record
    "checkpoint",  # a retention checkpoint not signed with this appliance's key
    "index",  # the searchable document ids no longer match the payload
]
# Looking for where a damaged record came from costs one hash per pair of (damaged record,
# vacant seq); past these counts records are judged edited or forged without that search.
_MAX_SUSPECTS = 2000
_MAX_CANDIDATES = 2000


class VerifyProblem(NamedTuple):
    seq: int
    kind: ProblemKind
    message: str


@dataclass
class VerifyReport:
    checked: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int | None = None
    checkpoint_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_seq": self.head_seq,
            "checkpoint_seq": self.checkpoint_seq,
            "problems": [problem._asdict() for problem in self.problems],
        }


def _seqs(first: int, last: int) -> str:
    return f"seq {first}" if first == last else f"seqs {first} to {last}"


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _without(ranges: list[tuple[int, int]], points: set[int]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for first, last in ranges:
        start = first
        for point in sorted(p for p in points if first <= p <= last):
            if start < point:
                kept.append((start, point - 1))
            start = point + 1
        if start <= last:
            kept.append((start, last))
    return kept


class ChainCheck:
    """Fed stored records in seq order, with the document ids stored beside each for search."""

    def __init__(
        self, key: AuditKey, head: AuditHead | None, checkpoints: list[Checkpoint]
    ) -> None:
        self._key = key
        self._head = head
        self.report = VerifyReport(head_seq=head.seq if head else None)
        start: Checkpoint | None = None
        for checkpoint in sorted(checkpoints, key=lambda item: item.seq):
            if key.signed(checkpoint.signature, "checkpoint", checkpoint.message()):
                start = checkpoint
            else:
                self._problem(
                    checkpoint.seq,
                    "checkpoint",
                    f"the retention checkpoint at seq {checkpoint.seq} is not signed with this "
                    "appliance's key: it was forged or altered",
                )
        # Everything before the latest genuine checkpoint was purged on purpose.
        self._start_seq = start.seq if start else 1
        self._start_hash = start.prev_hash if start else GENESIS_HASH
        self.report.checkpoint_seq = start.seq if start else None
        self._expected = self._start_seq
        self._last_position: int | None = None
        self._previous: AuditRecord | None = None  # the intact record just before, if any
        self._hash_at_head: str | None = None
        self._gaps: list[tuple[int, int]] = []
        self._suspects: list[AuditRecord] = []

    def _problem(self, seq: int, kind: ProblemKind, message: str) -> None:
        self.report.problems.append(VerifyProblem(seq, kind, message))

    def add(self, record: AuditRecord, indexed_doc_ids: list[str]) -> None:
        report, seq = self.report, record.seq
        report.checked += 1
        report.first_seq = seq if report.first_seq is None else report.first_seq
        report.last_seq = seq
        if seq < self._start_seq:
            self._problem(
                seq,
                "inserted",
                f"seq {seq} is older than the retention checkpoint at seq {self._start_seq}: "
                "it was put back after the purge",
            )
            return
        if seq > self._expected:
            self._gaps.append((self._expected, seq - 1))
        self._expected = seq + 1
        self._last_position = seq
        previous, self._previous = self._previous, None
        intact = record.content_hash() == record.hash and self._key.signed(
            record.signature, "record", record.hash
        )
        if not intact:
            if len(self._suspects) < _MAX_SUSPECTS:
                self._suspects.append(record)
            else:
                self._judge(record, set())
            return
        self._previous = record
        if self._head and seq == self._head.seq:
            self._hash_at_head = record.hash
        if seq == self._start_seq:
            self._check_link(record, self._start_hash, "the start of the log")
        elif previous is not None and previous.seq == seq - 1:
            self._check_link(record, previous.hash, f"seq {seq - 1}")
        if indexed_doc_ids != document_ids(record.payload):
            self._problem(
                seq,
                "index",
                f"seq {seq}'s searchable document ids were changed: a search by document "
                "would not find it",
            )

    def _check_link(self, record: AuditRecord, expected: str, what: str) -> None:
        if record.prev_hash != expected:
            if self.report.checkpoint_seq == record.seq:
                what = f"the retention checkpoint at seq {record.seq}"
            self._problem(
                record.seq,
                "chain",
                f"seq {record.seq} is genuine but does not chain from {what}: one of them was "
                "swapped in from another copy of the log",
            )

    def _judge(self, record: AuditRecord, candidates: set[int]) -> int | None:
        """Names what happened to a record that is not intact; returns the seq it came from."""
        seq = record.seq
        signed = self._key.signed(record.signature, "record", record.hash)
        if signed:
            for origin in sorted(candidates - {seq}):
                if record.content_hash(origin) == record.hash:
                    self._problem(
                        seq,
                        "reordered",
                        f"seq {seq} holds the record written as seq {origin}: records were moved",
                    )
                    return origin
        if signed:
            self._problem(
                seq,
                "edited",
                f"seq {seq} was changed after it was written: its content no longer matches "
                "its signed hash",
            )
        elif record.content_hash() == record.hash:
            self._problem(
                seq,
                "forged",
                f"seq {seq} is not signed with this appliance's key: it was forged, or edited "
                "and re-hashed",
            )
        else:
            self._problem(
                seq,
                "forged",
                f"seq {seq} was rewritten without the key: neither its hash nor its signature "
                "is genuine",
            )
        return None

    def _check_head(self) -> int | None:
        """The last seq the signed head vouches for; None when the head cannot be trusted."""
        head, last = self._head, self._last_position
        if head is None:
            if last is not None or self.report.checkpoint_seq is not None:
                self._problem(
                    last or 0,
                    "head",
                    "the signed head is missing: records may have been cut off the end",
                )
            return None
        if not self._key.signed(head.signature, "head", head.message()):
            self._problem(
                head.seq,
                "head",
                "the signed head is not signed with this appliance's key: it was forged or "
                "altered, so records cut off the end would not show",
            )
            return None
        if last is not None and last > head.seq:
            self._problem(
                head.seq + 1,
                "inserted",
                f"{_seqs(head.seq + 1, last)} come after the signed head (seq {head.seq}): "
                "added without the key",
            )
        if self._hash_at_head is not None and self._hash_at_head != head.hash:
            self._problem(
                head.seq,
                "head",
                f"the signed head names another record as seq {head.seq} than the one stored",
            )
        if head.seq == self._start_seq - 1 and head.hash != self._start_hash:
            self._problem(
                head.seq,
                "head",
                "the signed head does not match the retention checkpoint it follows",
            )
        return head.seq

    def finish(self) -> VerifyReport:
        end = self._check_head()
        last = self._last_position
        missing = list(self._gaps)
        after_last = self._start_seq if last is None else last + 1
        if end is not None and end >= after_last:
            missing.append((after_last, end))
        candidates: set[int] = {record.seq for record in self._suspects}
        for first, last_missing in missing:
            if len(candidates) < _MAX_CANDIDATES:
                stop = min(last_missing, first + _MAX_CANDIDATES - len(candidates))
                candidates.update(range(first, stop + 1))
        origins: set[int] = set()
        vacated: list[tuple[int, int]] = []
        for record in self._suspects:
            origin = self._judge(record, candidates)
            if origin is not None:
                origins.add(origin)
                vacated.append((record.seq, record.seq))
        for first, last_missing in _without(_merge(missing + vacated), origins):
            if last is None or first > last:
                self._problem(
                    first,
                    "truncated",
                    f"{_seqs(first, last_missing)} missing from the end of the log: it was cut "
                    f"off (the signed head names seq {end})",
                )
            else:
                verb = "was" if first == last_missing else "were"
                self._problem(first, "deleted", f"{_seqs(first, last_missing)} {verb} deleted")
        self.report.problems.sort(key=lambda problem: problem.seq)
        return self.report
