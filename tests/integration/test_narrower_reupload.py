"""A re-upload with narrower groups must not show its bytes under the old, wider groups.

Security review, finding 2, replayed over HTTP: a file uploaded for `everyone` is uploaded again
under the same name for `hr` only. Before, the new bytes replaced the old file at once while the
catalog kept the old groups until indexing succeeded, so a failed re-index (here a line over
ingest.max_line_mb) left them downloadable by everyone; and while a re-index ran, the new chunks
were listed under the old groups. Each assertion can fail: the old version is still served to the
same reader, and the hr reader sees the new chunks.
"""

from __future__ import annotations

from pathlib import Path

from appliance.container import Components
from appliance.domain import Chunk
from tests.conftest import api_client, settings_for
from tests.integration.test_api_documents import wait_done

OLD = b"The launch review is on Friday in room 4.\n"
SECRET = "Layoffs of the Lisbon team are planned for May."


def _upload(admin, content: bytes, groups: str) -> dict:
    files = {"files": ("plan.txt", content, "text/plain")}
    job = admin.post("/v1/documents", files=files, data={"groups": groups}).json()
    return wait_done(admin, job["job_id"])


def test_a_failed_narrower_reupload_shows_nothing_new_to_the_old_groups(
    embedder, tmp_path: Path
) -> None:
    # 1 KB: the re-upload's long line fails it, as a scanned PDF or a data dump would.
    settings = settings_for(tmp_path / "data", APPLIANCE__INGEST__MAX_LINE_MB="0.001")
    components = Components(settings)
    components.embedder = embedder
    admin = api_client(settings, components, role="admin", groups=("everyone", "hr"))
    everyone = api_client(settings, components, role="reader")
    assert [item["status"] for item in _upload(admin, OLD, "everyone")["files"]] == ["indexed"]
    doc = everyone.get("/v1/documents").json()[0]
    assert everyone.get(f"/v1/documents/{doc['doc_id']}/file").content == OLD

    narrower = f"{SECRET}\n{'x' * 2000}\n".encode()
    job = _upload(admin, narrower, "hr")
    assert [item["status"] for item in job["files"]] == ["failed"], job
    assert "ingest.max_line_mb" in job["files"][0]["error"]

    served = everyone.get(f"/v1/documents/{doc['doc_id']}/file")
    assert served.status_code == 404 and SECRET.encode() not in served.content
    chunks = everyone.get(f"/v1/documents/{doc['doc_id']}/chunks")
    assert all(SECRET not in chunk["text"] for chunk in chunks.json())
    hits = everyone.post("/v1/search", json={"query": "layoffs Lisbon team"}).json()["hits"]
    assert all(SECRET not in hit["text"] for hit in hits)


def test_chunks_written_before_the_catalog_changes_keep_their_own_groups(
    embedder, tmp_path: Path
) -> None:
    """The moment between a narrower version's chunks being written and the catalog row
    saying so: its chunks are in the store with `hr`, the row still says `everyone`."""
    settings = settings_for(tmp_path / "data")
    components = Components(settings)
    components.embedder = embedder
    admin = api_client(settings, components, role="admin", groups=("everyone", "hr"))
    everyone = api_client(settings, components, role="reader")
    hr = api_client(settings, components, role="reader", groups=("hr",))
    _upload(admin, OLD, "everyone")
    doc = everyone.get("/v1/documents").json()[0]
    new = Chunk(doc["doc_id"], "v2", 0, SECRET, doc["path"], groups=("hr",), title="plan")
    components.chunk_store.upsert([new], embedder.embed_documents([SECRET]))

    shown = [
        chunk["text"] for chunk in everyone.get(f"/v1/documents/{doc['doc_id']}/chunks").json()
    ]
    assert SECRET not in shown and OLD.decode().strip() in " ".join(shown)
    # The catalog still lists the document for everyone, so hr (not in everyone) gets a 404;
    # the admin, in both groups, sees the new chunk: the filter is by group, not by age.
    assert hr.get(f"/v1/documents/{doc['doc_id']}/chunks").status_code == 404
    texts = [chunk["text"] for chunk in admin.get(f"/v1/documents/{doc['doc_id']}/chunks").json()]
    assert SECRET in texts
