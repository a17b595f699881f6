"""A symbolic link in a synced share must not make a secret of the service a readable document.

The attack of the security review, replayed over HTTP: an admin registers a share that holds
links to the audit log's HMAC key and to the catalog database; after a sync, a reader of group
`everyone` asks for every document's file. Each assertion can fail: the ordinary file beside the
links is listed and served to the same reader.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from appliance.container import Components
from appliance.settings import Settings
from tests.conftest import CORPUS, api_client
from tests.integration.test_api_documents import wait_done


def _sync(admin, share: Path) -> dict:
    source = admin.post("/v1/sources", json={"path": str(share)}).json()
    return wait_done(admin, admin.post(f"/v1/sources/{source['source_id']}/sync").json()["job_id"])


def test_links_in_a_share_are_never_ingested_or_served(
    settings: Settings, embedder, tmp_path: Path
) -> None:
    components = Components(settings)
    components.embedder = embedder
    admin = api_client(settings, components, role="admin")
    reader = api_client(settings, components, role="reader")
    components.audit.append("probe", "tests", [], {})  # makes the audit key exist
    key_file = settings.data_dir / "secrets" / "audit.key"
    assert key_file.is_file()
    share = tmp_path / "share"
    share.mkdir()
    shutil.copy(CORPUS / "vpn-policy.txt", share / "vpn-policy.txt")
    (share / "minutes.txt").symlink_to(key_file)
    (share / "notes.md").symlink_to(settings.catalog_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.md").write_text("The root password is hunter2.\n")
    (share / "linked-folder").symlink_to(outside, target_is_directory=True)

    job = _sync(admin, share)

    assert [Path(item["path"]).name for item in job["files"]] == ["vpn-policy.txt"]
    listed = {Path(doc["path"]).name: doc for doc in reader.get("/v1/documents").json()}
    assert set(listed) == {"vpn-policy.txt"}
    served = reader.get(f"/v1/documents/{listed['vpn-policy.txt']['doc_id']}/file")
    assert served.status_code == 200
    assert served.content == (CORPUS / "vpn-policy.txt").read_bytes()
    hits = reader.post("/v1/search", json={"query": "root password hunter2"}).json()["hits"]
    assert all("hunter2" not in hit["text"] for hit in hits)


def test_a_file_swapped_for_a_link_after_indexing_is_not_served_and_sync_drops_it(
    settings: Settings, embedder, tmp_path: Path
) -> None:
    components = Components(settings)
    components.embedder = embedder
    admin = api_client(settings, components, role="admin")
    reader = api_client(settings, components, role="reader")
    components.audit.append("probe", "tests", [], {})
    share = tmp_path / "share"
    share.mkdir()
    minutes = share / "minutes.txt"
    minutes.write_text("The board met on Tuesday and approved the budget.\n")
    _sync(admin, share)
    doc = reader.get("/v1/documents").json()[0]
    assert reader.get(f"/v1/documents/{doc['doc_id']}/file").status_code == 200

    minutes.unlink()
    minutes.symlink_to(settings.data_dir / "secrets" / "audit.key")

    response = reader.get(f"/v1/documents/{doc['doc_id']}/file")
    assert response.status_code == 404
    assert "no longer the one indexed" in response.json()["message"]
    assert key_bytes_absent(response.content, settings)
    job = _sync(admin, share)
    assert [item["status"] for item in job["files"]] == ["deleted"]
    assert reader.get("/v1/documents").json() == []


def key_bytes_absent(content: bytes, settings: Settings) -> bool:
    return (settings.data_dir / "secrets" / "audit.key").read_bytes() not in content
