"""A refused outbound connection made while serving a request becomes an audit record naming the
user whose request caused it (the API registers the guard's listener)."""

from __future__ import annotations

import socket

import pytest

from appliance.auth.principal import Principal, acting
from appliance.container import Components
from appliance.egress import arm_from_settings, guard
from appliance.errors import EgressDenied
from appliance.server.app import create_app
from appliance.settings import Settings

TEST_NET = "203.0.113.5"  # RFC 5737 documentation range: routed nowhere


def test_a_refused_connection_is_audited_with_its_user(settings: Settings) -> None:
    components = Components(settings)
    app = create_app(settings, components)
    arm_from_settings(settings)
    token = acting.set(Principal("mallory", "reader", frozenset({"eng"})))
    try:
        with pytest.raises(EgressDenied):
            socket.create_connection((TEST_NET, 443), timeout=1)
    finally:
        acting.reset(token)
        guard.disarm()
        app.state.remove_egress_listener()
    refused = components.audit.records(kind="egress")
    assert len(refused) == 1
    record = refused[0]
    assert record.actor == "mallory" and record.groups == ["eng"]
    assert record.payload["refused"] is True and record.payload["host"] == TEST_NET
    assert record.payload["port"] == 443
    assert components.audit.verify().ok
