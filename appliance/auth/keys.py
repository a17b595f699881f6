"""API keys: created once and shown once, stored as argon2 hashes, revocable at any time."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import text

from appliance.auth.principal import ROLES, Principal, Role
from appliance.database import Database
from appliance.errors import AuthenticationFailed, KeyNotFound, UploadRejected
from appliance.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    groups      TEXT NOT NULL,        -- JSON list
    hash        TEXT NOT NULL,        -- argon2id of the whole key
    created_by  TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    revoked_at  DOUBLE PRECISION
)
"""
_PREFIX = "apk_"
_TOKEN = re.compile(r"^apk_([0-9a-f]{12})\.([A-Za-z0-9_-]{20,})$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    user: str
    role: Role
    groups: tuple[str, ...]
    created_by: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(self.user, self.role, frozenset(self.groups), key_id=self.key_id)

    def to_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "user": self.user,
            "role": self.role,
            "groups": list(self.groups),
            "created_by": self.created_by,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def key_id_of(token: str) -> str | None:
    """The key id a presented token claims, for the audit record of a failed attempt."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def check_groups(groups: list[str]) -> tuple[str, ...]:
    bad = [group for group in groups if not _GROUP.match(group)]
    if bad:
        raise UploadRejected(
            f"group names are letters, digits, '.', '_' and '-' (up to 64): {bad!r} are not"
        )
    return tuple(sorted(set(groups)))


class KeyStore:
    def __init__(self, database: Database, verified_cache_size: int = 4096) -> None:
        self._db = database
        # argon2 is deliberately slow: measured 0.21 s of one core per verify, and 1.6 s for 8 at
        # once. With a cache that expired, every minute a burst of requests re-verified together
        # and stalled their answers by seconds. So a token is verified once per process, against
        # the stored hash it matched (a changed hash is verified again), and revocation is read
        # from the database on every request as before.
        self._hasher = PasswordHasher()
        self._cache_size = verified_cache_size
        self._verified: OrderedDict[str, str] = OrderedDict()  # sha256(token) -> stored hash
        self._lock = threading.Lock()
        # One argon2 per key at a time: a burst with a new key waits for the first verify
        # instead of repeating it, and wrong guesses at one key cannot use every core.
        self._verifying: dict[str, threading.Lock] = {}
        self._decoy: str | None = None  # what an unknown key id is verified against

    @classmethod
    def for_settings(cls, settings: Settings) -> KeyStore:
        return cls(Database.for_settings(settings, _SCHEMA), settings.auth.verified_cache_size)

    def create(
        self, user: str, role: str, groups: list[str], created_by: str
    ) -> tuple[ApiKey, str]:
        """The new key and its secret token, which is shown this once and never stored."""
        if role not in ROLES:
            raise UploadRejected(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not user.strip():
            raise UploadRejected("a key needs a user name")
        key_id = secrets.token_hex(6)
        token = f"{_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, user, role, check_groups(groups), created_by, time.time(), None)  # type: ignore[arg-type]
        with self._db.transaction() as connection:
            connection.execute(
                text(
                    "INSERT INTO api_keys (key_id, user_name, role, groups, hash, created_by,"
                    " created_at) VALUES (:key_id, :user, :role, :groups, :hash, :by, :at)"
                ),
                {
                    "key_id": key_id,
                    "user": user,
                    "role": role,
                    "groups": json.dumps(list(key.groups)),
                    "hash": self._hasher.hash(token),
                    "by": created_by,
                    "at": key.created_at,
                },
            )
        return key, token

    def _row(self, key_id: str) -> tuple[ApiKey, str] | None:
        with self._db.transaction() as connection:
            row = connection.execute(
                text(
                    "SELECT key_id, user_name, role, groups, created_by, created_at, revoked_at,"
                    " hash FROM api_keys WHERE key_id = :key_id"
                ),
                {"key_id": key_id},
            ).fetchone()
        if row is None:
            return None
        key = ApiKey(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4], row[5], row[6])
        return key, row[7]

    def list(self) -> list[ApiKey]:
        with self._db.transaction() as connection:
            rows = connection.execute(
                text(
                    "SELECT key_id, user_name, role, groups, created_by, created_at, revoked_at"
                    " FROM api_keys ORDER BY created_at"
                )
            ).fetchall()
        return [ApiKey(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5], r[6]) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self._db.transaction() as connection:
            updated = connection.execute(
                text(
                    "UPDATE api_keys SET revoked_at = :now"
                    " WHERE key_id = :key_id AND revoked_at IS NULL"
                ),
                {"now": time.time(), "key_id": key_id},
            ).rowcount
        found = self._row(key_id)
        if found is None or (not updated and found[0].active):
            raise KeyNotFound(f"no key {key_id}")
        return found[0]

    def _decoy_hash(self) -> str:
        with self._lock:
            if self._decoy is None:
                self._decoy = self._hasher.hash(secrets.token_urlsafe(32))
            return self._decoy

    def verified_before(self, token: str) -> bool:
        """Whether this process has verified `token` (revocation is not looked at here)."""
        with self._lock:
            return hashlib.sha256(token.encode()).hexdigest() in self._verified

    def _already_verified(self, fingerprint: str, stored_hash: str) -> bool:
        with self._lock:
            return self._verified.get(fingerprint) == stored_hash

    def _remember(self, fingerprint: str, stored_hash: str) -> None:
        with self._lock:
            self._verified[fingerprint] = stored_hash
            self._verified.move_to_end(fingerprint)
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)

    def authenticate(self, token: str) -> Principal:
        """The key's principal; AuthenticationFailed for a malformed, unknown, wrong or revoked
        key, all with the same message so a caller learns nothing about which."""
        refused = AuthenticationFailed("the API key is missing, unknown or revoked")
        key_id = key_id_of(token)
        found = self._row(key_id) if key_id else None
        if found is None or not found[0].active:
            # As slow as a wrong secret, so the time taken does not tell which key ids exist.
            with contextlib.suppress(VerificationError, InvalidHashError):
                self._hasher.verify(found[1] if found else self._decoy_hash(), token)
            raise refused
        key, stored_hash = found
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        if not self._already_verified(fingerprint, stored_hash):
            with self._lock:
                verifying = self._verifying.setdefault(key.key_id, threading.Lock())
            with verifying:
                if not self._already_verified(fingerprint, stored_hash):
                    try:
                        self._hasher.verify(stored_hash, token)
                    except (VerificationError, InvalidHashError):
                        raise refused from None
                    self._remember(fingerprint, stored_hash)
        return key.principal()
