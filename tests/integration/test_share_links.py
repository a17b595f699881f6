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
from tests.conftest import CORPUS, api_client, settings_for
from tests.integration.test_api_documents import wait_done


def _share_settings(tmp_path: Path) -> Settings:
    """An admin key may register folders under tmp_path (access.allowed_source_roots)."""
    return settings_for(tmp_path / "data", APPLIANCE__ACCESS__ALLOWED_SOURCE_ROOTS=f"[{tmp_path}]")


def _sync(admin, share: Path) -> dict:
    source = admin.post("/v1/sources", json={"path": str(share)}).json()
    return wait_done(admin, admin.post(f"/v1/sources/{source['source_id']}/sync").json()["job_id"])


def test_links_in_a_share_are_never_ingested_or_served(embedder, tmp_path: Path) -> None:
    settings = _share_settings(tmp_path)
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
    embedder, tmp_path: Path
) -> None:
    settings = _share_settings(tmp_path)
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


def test_an_admin_key_registers_only_folders_under_the_allowed_roots(
    embedder, tmp_path: Path
) -> None:
    """Security review, finding 7: any folder could be a source (`/etc`, the data folder), its
    files then readable by `everyone`. The folder under the allowed root is registered by the
    same admin key, so the refusals are the roots' doing."""
    allowed = tmp_path / "shares"
    (allowed / "team").mkdir(parents=True)
    settings = settings_for(
        tmp_path / "data", APPLIANCE__ACCESS__ALLOWED_SOURCE_ROOTS=f"[{allowed}]"
    )
    components = Components(settings)
    components.embedder = embedder
    admin = api_client(settings, components, role="admin")
    # A link inside the allowed root that points out of it is judged by where it leads.
    (allowed / "escape").symlink_to(settings.data_dir, target_is_directory=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for folder in ("/etc", "/", str(settings.data_dir), str(allowed / "escape"), f"{allowed}/../"):
        refused = admin.post("/v1/sources", json={"path": folder})
        assert refused.status_code == 403, (folder, refused.text)
        assert "access.allowed_source_roots" in refused.json()["message"]
    assert admin.get("/v1/sources").json() == []
    registered = admin.post("/v1/sources", json={"path": str(allowed / "team")})
    assert registered.status_code == 201, registered.text
    assert [source["path"] for source in admin.get("/v1/sources").json()] == [
        str((allowed / "team").resolve())
    ]
    # With no roots listed (the default), an admin key registers no folder at all.
    default = api_client(settings_for(tmp_path / "data2"), role="admin")
    assert default.post("/v1/sources", json={"path": str(allowed / "team")}).status_code == 403
