"""A flood of failed authentication, replayed over HTTP (security review, finding 5).

Before, every unauthenticated request wrote its own signed audit record (a flood fought for the
log's write lock) under an actor the caller chose (`apk_<victim id>.junk`), and an unknown key id
was refused before argon2 ran, so it answered faster than a wrong secret and told which ids
exist. Each assertion can fail: the same address's verified key still gets in, and another key's
wrong secret is checked just like an unknown id.
"""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from appliance.container import Components
from tests.conftest import settings_for

JUNK = "x" * 24  # a well-formed secret that is wrong


def test_a_flood_from_one_address_is_refused_and_audited_in_a_few_records(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from appliance.server.app import create_app

    settings = settings_for(tmp_path / "data", APPLIANCE__AUTH__FAILED_PER_MINUTE="5")
    components = Components(settings)
    victim, token = components.keys.create("victim", "reader", ["everyone"], "tests")
    client = TestClient(create_app(settings, components))
    good = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/documents", headers=good).status_code == 200  # verified once
    forged = {"Authorization": f"Bearer apk_{victim.key_id}.{JUNK}"}
    statuses = [client.get("/v1/documents", headers=forged).status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    refused = client.get("/v1/documents", headers=forged)
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "too many failed attempts" in refused.json()["message"]
    # The key this process verified before still works from the same address.
    assert client.get("/v1/documents", headers=good).status_code == 200

    records = components.audit.records(kind="auth_failed")
    assert len(records) == 5  # not one per request: the 429s never reach argon2 or the log
    assert {record.actor for record in records} == {"unauthenticated"}
    assert {record.payload["claimed_key_id"] for record in records} == {victim.key_id}
    assert records[-1].payload["refused_from_now"] is True


def test_an_unknown_key_id_is_checked_as_slowly_as_a_wrong_secret(
    tmp_path: Path, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from appliance.server.app import create_app

    settings = settings_for(tmp_path / "data")
    components = Components(settings)
    known, _ = components.keys.create("someone", "reader", ["everyone"], "tests")
    client = TestClient(create_app(settings, components))
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self, stored: str, password: str) -> bool:
        verified.append(password)
        return real_verify(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    tokens = [f"apk_{known.key_id}.{JUNK}", f"apk_000000000000.{JUNK}"]
    for token in tokens:
        response = client.get("/v1/documents", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.json()["message"] == "the API key is missing, unknown or revoked"
    assert verified == tokens
