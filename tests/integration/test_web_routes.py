"""The web page's server side without a browser: the static page, /v1/me, and audited feedback."""

from __future__ import annotations

from appliance.container import Components
from appliance.settings import Settings
from tests.conftest import api_client


def test_the_page_is_served_at_ui_and_the_root_leads_there(settings: Settings) -> None:
    client = api_client(settings)
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    page = client.get("/ui/", headers={"Authorization": ""})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script src="app.js"' in page.text
    script = client.get("/ui/app.js", headers={"Authorization": ""})
    assert script.status_code == 200 and "/v1/chat/completions" in script.text
    assert client.get("/ui/style.css").status_code == 200


def test_me_names_the_caller_for_every_role(settings: Settings) -> None:
    components = Components(settings)
    for role in ("reader", "admin", "auditor"):
        client = api_client(settings, components, role=role, groups=("eng", "everyone"))
        assert client.get("/v1/me").json() == {
            "user": "tester",
            "role": role,
            "groups": ["eng", "everyone"],
        }
    anonymous = api_client(settings, components)
    anonymous.headers["Authorization"] = "Bearer apk_nothing.wrong"
    assert anonymous.get("/v1/me").status_code == 401


def test_feedback_is_an_audit_record_an_auditor_finds(settings: Settings) -> None:
    components = Components(settings)
    reader = api_client(settings, components, role="reader")
    body = {
        "question": "Which extension is the incident bridge on?",
        "answer": "Extension 4471 [1].",
        "chunk_ids": ["incident-response-abc:v1:3"],
        "rating": "up",
        "comment": "spot on",
    }
    response = reader.post("/v1/feedback", json=body)
    assert response.status_code == 201, response.text

    auditor = api_client(settings, components, role="auditor")
    found = auditor.get("/v1/audit/records", params={"kind": "feedback"}).json()
    assert len(found) == 1
    record = found[0]
    assert record["actor"] == "tester" and record["payload"]["rating"] == "up"
    assert record["payload"]["question"] == body["question"]
    assert record["payload"]["retrieved"] == [
        {"chunk_id": "incident-response-abc:v1:3", "doc_id": "incident-response-abc"}
    ]
    by_document = auditor.get("/v1/audit/records", params={"doc_id": "incident-response-abc"})
    assert [r["seq"] for r in by_document.json()] == [record["seq"]]
    assert auditor.get("/v1/audit/verify").json()["ok"] is True

    assert auditor.post("/v1/feedback", json=body).status_code == 403
    assert reader.post("/v1/feedback", json={**body, "rating": "meh"}).status_code == 422
