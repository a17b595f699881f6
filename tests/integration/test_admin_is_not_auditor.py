"""An admin key cannot make itself an auditor (issue 15, finding 4), replayed over HTTP: the
admin asks the API for an auditor key, and would then read the audit log with it."""

from __future__ import annotations

from appliance.container import Components
from appliance.settings import Settings
from tests.conftest import api_client


def test_an_admin_cannot_mint_an_auditor_key_but_a_reader_key_still_works(
    settings: Settings,
) -> None:
    components = Components(settings)
    admin = api_client(settings, components, role="admin")
    before = {key.key_id for key in components.keys.list()}

    refused = admin.post("/v1/keys", json={"user": "mallory", "role": "auditor"})

    assert refused.status_code == 403
    assert "appliance keys create --role auditor" in refused.json()["message"]
    assert {key.key_id for key in components.keys.list()} == before
    # The same admin still makes reader keys, and the audit log stays closed to it.
    made = admin.post("/v1/keys", json={"user": "bob", "role": "reader"})
    assert made.status_code == 201 and made.json()["token"]
    assert admin.get("/v1/audit/records").status_code == 403
