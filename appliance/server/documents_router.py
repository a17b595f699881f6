"""Documents, jobs and source folders: upload, list, read, delete, sync, retry."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from appliance.auth.keys import check_groups
from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.domain import DocumentAccess
from appliance.errors import DocumentNotFound, PermissionDenied
from appliance.server.auth import Admin, Reader
from appliance.server.read_audit import record_read

if TYPE_CHECKING:
    from ingest.catalog import DocumentRecord
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


def readable_document(request: Request, principal: Principal, doc_id: str) -> DocumentRecord:
    """The document, or the same 404 whether it is missing or outside the caller's groups, so
    its existence does not leak."""
    record = jobs_of(request).catalog.get(doc_id)
    if record is None or not principal.may_read(record.groups):
        raise DocumentNotFound(f"no document {doc_id}")
    return record


@documents_router.post("/v1/documents", status_code=202)
def upload(
    files: list[UploadFile],
    request: Request,
    principal: Admin,
    groups: Annotated[str | None, Form(description="comma-separated groups that may read")] = None,
    collection: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Upload one or many files; each becomes one file of a new ingest job."""
    access = None
    if groups or collection:
        defaults = request.app.state.components.settings.access
        access = DocumentAccess(
            check_groups(groups.split(",")) if groups else tuple(defaults.default_groups),
            collection or defaults.default_collection,
        )
    # Starlette has spooled each file to disk; it is copied on in blocks, never read whole.
    streams = [(item.filename or "", item.file) for item in files]
    return jobs_of(request).submit_upload(streams, access, principal.user).to_dict()


@documents_router.get("/v1/documents")
def list_documents(request: Request, principal: Reader) -> list[dict[str, Any]]:
    """Readers see the documents their groups may read; admins see every document."""
    records = jobs_of(request).catalog.list()
    if principal.role != "admin":
        records = [record for record in records if principal.may_read(record.groups)]
    return [record.to_dict() for record in records]


@documents_router.get("/v1/documents/{doc_id}")
def get_document(doc_id: str, request: Request, principal: Reader) -> dict[str, Any]:
    return readable_document(request, principal, doc_id).to_dict()


@documents_router.get("/v1/documents/{doc_id}/chunks")
def document_chunks(doc_id: str, request: Request, principal: Reader) -> list[dict[str, Any]]:
    """The indexed passages of a document in order: where a citation is seen in context."""
    readable_document(request, principal, doc_id)
    components = request.app.state.components
    # Each chunk by its own groups too: a re-upload with narrower groups writes its chunks
    # before the catalog row changes, and they must not show under the old, wider groups.
    chunks = [
        chunk
        for chunk in components.chunk_store.document_chunks(doc_id)
        if principal.may_read(chunk["groups"])
    ]
    record_read(
        components,
        principal,
        "read",
        {"doc_id": doc_id, "what": "chunks", "chunk_ids": [chunk["chunk_id"] for chunk in chunks]},
    )
    return chunks


@documents_router.get("/v1/documents/{doc_id}/file")
def download(doc_id: str, request: Request, principal: Reader) -> StreamingResponse:
    """The document's file, only while it holds the very bytes that were indexed: a file
    swapped since (for a link to a secret, say) or a document that failed is not served."""
    record = readable_document(request, principal, doc_id)
    if record.status != "indexed" or not record.sha256:
        raise DocumentNotFound(f"document {doc_id} is not indexed, so its file is not served")
    content = indexed_bytes(Path(record.path), record.sha256)
    if content is None:
        raise DocumentNotFound(
            f"the file of document {doc_id} is no longer the one indexed at {record.path}"
        )
    record_read(
        request.app.state.components,
        principal,
        "read",
        {"doc_id": doc_id, "what": "file", "path": record.path, "sha256": record.sha256},
    )
    name = Path(record.path).name
    return StreamingResponse(
        iter([content]),
        media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
    )


def indexed_bytes(path: Path, sha256: str) -> bytes | None:
    """The file's bytes, opened without following a link, if they still hash to `sha256`."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone, unreadable, or a symbolic link now
        return None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        content = handle.read()
    return content if hashlib.sha256(content).hexdigest() == sha256 else None


@documents_router.delete("/v1/documents/{doc_id}")
def delete_document(doc_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    jobs = jobs_of(request)
    if jobs.catalog.get(doc_id) is None:
        raise DocumentNotFound(f"no document {doc_id}")
    return jobs.submit_delete([doc_id], principal.user).to_dict()


@documents_router.post("/v1/documents/retry", status_code=202)
def retry_failed(request: Request, principal: Admin) -> dict[str, Any]:
    job = jobs_of(request).retry_failed(principal.user)
    return job.to_dict() if job else {"job_id": None, "files_total": 0}


@documents_router.get("/v1/jobs")
def list_jobs(request: Request, principal: Admin) -> list[dict[str, Any]]:
    return [job.to_dict(with_files=False) for job in jobs_of(request).store.list()]


@documents_router.get("/v1/jobs/{job_id}")
def get_job(job_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    job = jobs_of(request).store.get(job_id)
    if job is None:
        raise DocumentNotFound(f"no job {job_id}")
    return job.to_dict()


class SourceBody(BaseModel):
    path: str


@documents_router.post("/v1/sources", status_code=201)
def add_source(body: SourceBody, request: Request, principal: Admin) -> dict[str, Any]:
    roots = request.app.state.components.settings.access.allowed_source_roots
    folder = Path(body.path)
    if not any(folder.resolve().is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(map(str, roots)) or "none are listed"
        raise PermissionDenied(
            f"{folder} is outside the folders an admin key may register as sources "
            f"(access.allowed_source_roots: {allowed}); register it on the host with "
            "`appliance sources add`, or list its parent there"
        )
    return jobs_of(request).add_source(folder).__dict__


@documents_router.get("/v1/sources")
def list_sources(request: Request, principal: Admin) -> list[dict[str, Any]]:
    return [source.__dict__ for source in jobs_of(request).store.sources()]


@documents_router.post("/v1/sources/{source_id}/sync", status_code=202)
def sync_source(source_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    jobs = jobs_of(request)
    source = jobs.store.source(source_id)
    if source is None:
        raise DocumentNotFound(f"no source {source_id}")
    return jobs.sync(Path(source.path), principal.user).to_dict()
