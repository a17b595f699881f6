"""Documents, jobs and source folders: upload, list, delete, sync, retry."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, UploadFile
from pydantic import BaseModel

from appliance.container import Components
from appliance.errors import DocumentNotFound

if TYPE_CHECKING:
    from ingest.jobs import IngestJobs

documents_router = APIRouter(tags=["documents"])


@cache
def _jobs(components: Components) -> IngestJobs:
    # The API is a composition root: here the appliance meets ingestion. Inline work runs on
    # one background thread of this process, so requests return at once with the job.
    from ingest.jobs import build_ingest_jobs

    return build_ingest_jobs(components, background=True)


def jobs_of(request: Request) -> IngestJobs:
    return _jobs(request.app.state.components)


@documents_router.post("/v1/documents", status_code=202)
def upload(files: list[UploadFile], request: Request) -> dict[str, Any]:
    """Upload one or many files; each becomes one file of a new ingest job."""
    # Starlette has spooled each file to disk; it is copied on in blocks, never read whole.
    streams = [(item.filename or "", item.file) for item in files]
    return jobs_of(request).submit_upload(streams).to_dict()


@documents_router.get("/v1/documents")
def list_documents(request: Request) -> list[dict[str, Any]]:
    return [record.__dict__ for record in jobs_of(request).catalog.list()]


@documents_router.delete("/v1/documents/{doc_id}")
def delete_document(doc_id: str, request: Request) -> dict[str, Any]:
    jobs = jobs_of(request)
    if jobs.catalog.get(doc_id) is None:
        raise DocumentNotFound(f"no document {doc_id}")
    job = jobs.submit_delete([doc_id])
    return job.to_dict()


@documents_router.post("/v1/documents/retry", status_code=202)
def retry_failed(request: Request) -> dict[str, Any]:
    job = jobs_of(request).retry_failed()
    return job.to_dict() if job else {"job_id": None, "files_total": 0}


@documents_router.get("/v1/jobs")
def list_jobs(request: Request) -> list[dict[str, Any]]:
    return [job.to_dict(with_files=False) for job in jobs_of(request).store.list()]


@documents_router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, request: Request) -> dict[str, Any]:
    job = jobs_of(request).store.get(job_id)
    if job is None:
        raise DocumentNotFound(f"no job {job_id}")
    return job.to_dict()


class SourceBody(BaseModel):
    path: str


@documents_router.post("/v1/sources", status_code=201)
def add_source(body: SourceBody, request: Request) -> dict[str, Any]:
    return jobs_of(request).add_source(Path(body.path)).__dict__


@documents_router.get("/v1/sources")
def list_sources(request: Request) -> list[dict[str, Any]]:
    return [source.__dict__ for source in jobs_of(request).store.sources()]


@documents_router.post("/v1/sources/{source_id}/sync", status_code=202)
def sync_source(source_id: str, request: Request) -> dict[str, Any]:
    jobs = jobs_of(request)
    source = jobs.store.source(source_id)
    if source is None:
        raise DocumentNotFound(f"no source {source_id}")
    return jobs.sync(Path(source.path)).to_dict()
