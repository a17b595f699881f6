"""API keys are verified by argon2 once per process and key, never twice at once, and a revoked
or wrong key is refused whatever was verified before (a real SQLite catalog, real argon2)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from appliance.auth.keys import KeyStore
from appliance.database import Database
from appliance.errors import AuthenticationFailed


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__()
        self.verified = 0
        self._count_lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._count_lock:
            self.verified += 1
        return super().verify(hash, password)


def store_at(tmp_path: Path, cache_size: int = 4096) -> tuple[KeyStore, CountingHasher]:
    from appliance.auth import keys

    store = KeyStore(Database.at("", tmp_path / "catalog.db", keys._SCHEMA), cache_size)
    hasher = CountingHasher()
    store._hasher = hasher
    return store, hasher


def test_a_burst_with_a_new_key_runs_argon2_once(tmp_path: Path) -> None:
    store, hasher = store_at(tmp_path)
    _, token = store.create("ada", "reader", ["eng"], "test")
    start = threading.Barrier(8)
    principals = []

    def ask() -> None:
        start.wait()
        principals.append(store.authenticate(token))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.user for p in principals] == ["ada"] * 8
    assert hasher.verified == 1
    store.authenticate(token)
    assert hasher.verified == 1  # remembered, not re-verified later


def test_a_revoked_or_altered_key_is_refused_after_it_was_verified(tmp_path: Path) -> None:
    store, _ = store_at(tmp_path)
    key, token = store.create("ada", "reader", ["eng"], "test")
    store.authenticate(token)
    with pytest.raises(AuthenticationFailed):
        store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))
    store.revoke(key.key_id)
    with pytest.raises(AuthenticationFailed):
        store.authenticate(token)


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    store, hasher = store_at(tmp_path, cache_size=1)
    tokens = [store.create(user, "reader", ["eng"], "test")[1] for user in ("ada", "bob")]
    for token in tokens * 2:
        store.authenticate(token)
    assert hasher.verified == 4  # each evicted the other
