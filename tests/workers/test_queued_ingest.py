"""Queued ingestion against a real Redis, a real `chroma run` and real worker processes."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from appliance.auth.principal import Principal
from appliance.components.embedding import Embedder
from appliance.container import Components
from appliance.retrieval.dense import DenseRetriever
from ingest.chunker import Chunker
from ingest.jobs import build_ingest_jobs
from ingest.parsers import ParseOptions, parser_for
from tests.conftest import CORPUS, api_client, free_port, settings_for
from tests.workers.bad_inputs import write_bad_inputs
from tests.workers.conftest import QueuedAppliance, _wait_until

pytestmark = pytest.mark.e2e


def chunk_ids(queued: QueuedAppliance, doc_id: str) -> list[str]:
    return Components(queued.settings).chunk_store.chunk_ids(doc_id)


def test_every_bad_input_fails_alone_and_the_worker_lives_on(
    queued: QueuedAppliance, tmp_path: Path, embedder: Embedder
) -> None:
    worker = queued.start_worker("w1")
    folder = tmp_path / "mixed"
    shutil.copytree(CORPUS, folder)
    expected = write_bad_inputs(folder / "bad")
    latin = folder / "cafe-latin1.txt"  # non-UTF-8 text is read in its own encoding
    latin.write_bytes(
        "Café rules: the espresso machine is descaled every Tuesday.".encode("cp1252")
    )
    jobs = queued.jobs()

    # Folders skip types we cannot read; a file named explicitly is tried and fails clearly.
    job = queued.wait_done(jobs.submit_paths([folder, folder / "bad" / "slides.pptx"]).job_id)

    by_name = {Path(item.path).name: item for item in job.files}
    for name, words in expected.items():
        assert by_name[name].status == "failed", name
        assert words in by_name[name].error, (name, by_name[name].error)
    good = {path.name for path in CORPUS.iterdir()} | {latin.name}
    assert {name for name, item in by_name.items() if item.status == "indexed"} == good
    assert worker.poll() is None, "the worker survived every bad document"

    hits = DenseRetriever(Components(queued.settings).chunk_store, embedder).retrieve(
        "When is the espresso machine descaled?", 1, Principal.local("test")
    )
    assert "Café" in hits[0].text

    # Upload-only bad inputs, through the API: unsafe names, and one file twice. The body is
    # built by hand because HTTP clients percent-encode a NUL in a file name; attackers do not.
    client = api_client(queued.settings)
    good_bytes = (CORPUS / "onboarding.md").read_bytes()
    parts = [
        (b"../../etc/cron.d/evil.md", b"# evil"),
        (b"nul\x00name.md", b"# nul"),
        (b"guide.md", good_bytes),
        (b"guide.md", good_bytes),
    ]
    body = (
        b"".join(
            b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="'
            + name
            + b'"\r\nContent-Type: text/markdown\r\n\r\n'
            + content
            + b"\r\n"
            for name, content in parts
        )
        + b"--XyZ--\r\n"
    )
    response = client.post(
        "/v1/documents",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == 202, response.text
    upload = queued.wait_done(response.json()["job_id"])
    errors = [item.error or "" for item in upload.files]
    assert [item.status for item in upload.files] == ["failed", "failed", "indexed", "failed"]
    assert "not a plain file name" in errors[0]
    assert "NUL character" in errors[1]
    assert "in this upload twice" in errors[3]
    assert not (queued.settings.uploads_dir.parent / "etc").exists()
    listing = client.get(f"/v1/jobs/{upload.job_id}").json()
    assert listing["failed"] == 3 and listing["status"] == "done"
    assert worker.poll() is None


def test_kill_9_mid_document_loses_and_duplicates_nothing(
    queued: QueuedAppliance, tmp_path: Path, embedder: Embedder
) -> None:
    big = tmp_path / "handbook.txt"
    paragraph = (
        "Section {n}. Engineers record every production change in the change log, with the "
        "ticket, the reviewer and the rollback plan, before the change window opens. "
    )
    big.write_text("\n\n".join(paragraph.format(n=n) * 6 for n in range(220)))
    settings = queued.settings
    chunker = Chunker(embedder, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens)
    expected_chunks = len(chunker.split(parser_for(big)(big, ParseOptions())))

    first = queued.start_worker("doomed")
    jobs = queued.jobs()
    job_id = jobs.submit_paths([big]).job_id
    store = jobs.store
    deadline = time.monotonic() + 120
    while store.get(job_id).files[0].status != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # mid-document: parsing or embedding, nothing committed yet
    assert store.get(job_id).files[0].status == "running"
    queued.kill(first, signal.SIGKILL)

    queued.start_worker("rescuer")
    job = queued.wait_done(job_id)

    item = job.files[0]
    assert item.status == "indexed" and item.attempts == 2 and item.worker.startswith("rescuer")
    ids = chunk_ids(queued, item.doc_id)
    assert len(ids) == len(set(ids)) == expected_chunks == item.chunks
    assert {chunk.split(":")[1] for chunk in ids} == {ids[0].split(":")[1]}


def test_sync_follows_added_changed_and_removed_files(
    queued: QueuedAppliance, tmp_path: Path
) -> None:
    queued.start_worker("w1")
    folder = tmp_path / "share"
    folder.mkdir()
    for name in ("onboarding.md", "vpn-policy.txt", "deploy-runbook.html"):
        shutil.copy(CORPUS / name, folder / name)
    jobs = queued.jobs()
    first = queued.wait_done(jobs.sync(folder).job_id)
    assert first.count("indexed") == 3
    removed_doc = next(i.doc_id for i in first.files if i.path.endswith("deploy-runbook.html"))

    shutil.copy(CORPUS / "expense-policy.docx", folder / "expense-policy.docx")
    (folder / "vpn-policy.txt").write_text("VPN\n\nSessions now expire after 9 hours.\n")
    (folder / "deploy-runbook.html").unlink()
    second = queued.wait_done(jobs.sync(folder).job_id)

    by_name = {Path(item.path).name: item.status for item in second.files}
    assert by_name == {
        "onboarding.md": "unchanged",
        "vpn-policy.txt": "indexed",
        "expense-policy.docx": "indexed",
        "deploy-runbook.html": "deleted",
    }
    assert chunk_ids(queued, removed_doc) == []
    assert queued.jobs().catalog.get(removed_doc) is None


def test_two_workers_share_the_work_and_lose_nothing(
    queued: QueuedAppliance, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(12):
        text = f"Note {n}\n\nTeam {n} meets on day {n} in room {100 + n}. " * 40
        (folder / f"note-{n:02}.txt").write_text(text)
    queued.start_worker("left")
    queued.start_worker("right")
    # Both ready before the work arrives (a fixed sleep was too short on a slow machine), and
    # one file a task: with two tasks of 8 and 4 files, a worker still busy with a task that an
    # earlier test's killed worker left behind could find both taken by the other.
    for name in ("left", "right"):
        log = queued.logs / f"{name}.log"
        _wait_until(lambda log=log: f"{log.stem}@".encode() in log.read_bytes()
                    and b" ready." in log.read_bytes(), 120, f"worker {name} ready")  # fmt: skip
    one_each = queued.settings.model_copy(
        update={"ingest": queued.settings.ingest.model_copy(update={"files_per_task": 1})}
    )
    jobs = build_ingest_jobs(Components(one_each), background=False)
    job = queued.wait_done(jobs.submit_paths([folder]).job_id)

    assert job.count("indexed") == 12
    assert {item.worker.split("@")[0] for item in job.files} == {"left", "right"}
    store = Components(queued.settings).chunk_store
    assert store.count() == job.chunks_written
    for item in job.files:
        assert len(store.chunk_ids(item.doc_id)) == item.chunks


def test_queued_jobs_survive_a_redis_restart(
    queued: QueuedAppliance, redis_server, tmp_path: Path
) -> None:
    jobs = queued.jobs()
    job_id = jobs.submit_paths([CORPUS / "onboarding.md", CORPUS / "vpn-policy.txt"]).job_id
    redis_server.stop()  # no worker has taken them yet: they exist only in Redis
    redis_server.start()
    queued.start_worker("after-restart")
    assert queued.wait_done(job_id).count("indexed") == 2


def test_a_dead_redis_is_a_clear_503(tmp_path: Path, chroma_server) -> None:
    settings = settings_for(
        tmp_path / "data",
        APPLIANCE__INGEST__MODE="celery",
        APPLIANCE__VECTOR_STORE__MODE="chroma_server",
        APPLIANCE__VECTOR_STORE__PORT=str(chroma_server.port),
        APPLIANCE_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        APPLIANCE__BROKER__CONNECT_TIMEOUT_S="1",
    )
    client = api_client(settings, raise_server_exceptions=False)
    response = client.post("/v1/documents", files=[("files", ("a.md", b"# a", "text/markdown"))])
    assert response.status_code == 503
    assert response.json()["error"] == "QueueUnavailable"
    assert "redis-server" in response.json()["message"]


def test_workers_on_two_machines_share_one_postgres_catalog(
    queued: QueuedAppliance, postgres_server, tmp_path: Path
) -> None:
    """Two data dirs stand for two machines: they share only PostgreSQL, Chroma and Redis."""
    queued.overrides["APPLIANCE_CATALOG_URL"] = postgres_server.new_database()
    # A task per file, so a five-file job can reach both machines (tasks carry 8 by default).
    queued.overrides["APPLIANCE__INGEST__FILES_PER_TASK"] = "1"
    shared = tmp_path / "nfs-share"  # the document share every machine mounts at one path
    shutil.copytree(CORPUS, shared)
    queued.start_worker("machine-a", data_dir=tmp_path / "machine-a")
    queued.start_worker("machine-b", data_dir=tmp_path / "machine-b")
    time.sleep(8)
    job = queued.wait_done(queued.jobs().submit_paths([shared]).job_id)

    assert job.count("indexed") == 5
    assert {item.worker.split("@")[0] for item in job.files} == {"machine-a", "machine-b"}
    assert not (tmp_path / "machine-a" / "catalog.sqlite3").exists()
    documents = queued.jobs().catalog.list()
    assert {Path(doc.path).name for doc in documents} == {p.name for p in CORPUS.iterdir()}
    assert sum(doc.chunks for doc in documents) == Components(queued.settings).chunk_store.count()


def test_cli_queues_a_job_and_follows_it_to_the_end(queued: QueuedAppliance) -> None:
    import json
    import subprocess

    from tests.workers.conftest import VENV_BIN

    queued.start_worker("w1")
    command = [str(VENV_BIN / "appliance"), "ingest", str(CORPUS), "--json"]
    waited = subprocess.run(command, capture_output=True, text=True, env=queued.env(), timeout=300)
    assert waited.returncode == 0, waited.stderr[-2000:]
    report = json.loads(waited.stdout)
    assert report["status"] == "done" and report["indexed"] == 5
    assert all(item["worker"].startswith("w1@") for item in report["files"])

    queued_only = subprocess.run(
        [*command, "--no-wait"], capture_output=True, text=True, env=queued.env(), timeout=300
    )
    job_id = json.loads(queued_only.stdout)["job_id"]
    assert queued.wait_done(job_id).count("unchanged") == 5
