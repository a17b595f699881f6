"""Ingest jobs as the CLI and API see them: submit files, uploads or a folder sync; list; retry."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from appliance.container import Components
from appliance.domain import DocumentAccess
from appliance.errors import UploadRejected
from appliance.private_dirs import make_private_dirs
from ingest.catalog import Catalog
from ingest.dispatch import Dispatcher, build_dispatcher
from ingest.job_store import Job, JobItem, JobStore, Source
from ingest.service import IngestService, document_id, expand_paths

_MAX_NAME = 255
_BLOCK = 1 << 20


def _store_upload(stream: BinaryIO, target: Path, limit: int) -> str | None:
    """Copies an upload to `target` in blocks; its sha256, or None (nothing kept) past `limit`.

    Written beside the target and renamed, so a worker never reads a half-written file, and
    never held whole in memory, so a huge upload cannot exhaust it.
    """
    digest = hashlib.sha256()
    size = 0
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    with os.fdopen(handle, "wb") as out:
        while block := stream.read(_BLOCK):
            size += len(block)
            if size > limit:
                out.close()
                os.unlink(partial)
                return None
            digest.update(block)
            out.write(block)
    os.replace(partial, target)
    return digest.hexdigest()


def upload_name_problem(name: str) -> str | None:
    """Why an uploaded file's name cannot be stored as given, or None if it can."""
    if "\x00" in name:
        return "the file name contains a NUL character"
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        return f"the file name {name!r} is not a plain file name (no folders or '..' allowed)"
    if len(name.encode()) > _MAX_NAME:
        return "the file name is longer than 255 bytes"
    return None


class IngestJobs:
    def __init__(
        self, components: Components, jobs: JobStore, catalog: Catalog, dispatcher: Dispatcher
    ) -> None:
        self.settings = components.settings
        self._components = components
        self.store = jobs
        self.catalog = catalog
        self._dispatcher = dispatcher

    def _submit(
        self, kind: str, items: list[JobItem], submitted_by: str, source: str | None = None
    ) -> Job:
        job_id = self.store.create(kind, items, source, submitted_by)
        queued = self.store.queued(job_id)
        if queued:
            self._dispatcher.dispatch(job_id, queued)
        job = self.store.get(job_id)
        assert job is not None
        return job

    def _set_access(self, paths: Iterable[str], access: DocumentAccess | None) -> None:
        # Recorded before the job is queued, so whichever worker takes a file sees it.
        if access is not None:
            for path in paths:
                self.catalog.set_access_override(document_id(Path(path)), access)

    def submit_paths(
        self, paths: Iterable[Path], access: DocumentAccess | None = None, submitted_by: str = ""
    ) -> Job:
        items = [JobItem(str(path.resolve())) for path in expand_paths(paths)]
        self._set_access([item.path for item in items], access)
        return self._submit("paths", items, submitted_by)

    def submit_upload(
        self,
        files: list[tuple[str, BinaryIO]],
        access: DocumentAccess | None = None,
        submitted_by: str = "",
    ) -> Job:
        """Stores each upload under data_dir/uploads by name (a later upload of the same name is
        a new version of that document) and queues it; bad names, oversized files and repeats
        fail alone."""
        if not files:
            raise UploadRejected("the upload contains no files")
        folder = self.settings.uploads_dir
        make_private_dirs(folder)
        limit = int(self.settings.ingest.max_file_mb * 2**20)
        seen: set[str] = set()
        items: list[JobItem] = []
        for name, stream in files:
            problem = upload_name_problem(name)
            if problem:
                shown = name.replace("\x00", "\\0") or "(no name)"
                items.append(JobItem(shown, error=f"{shown}: {problem}"))
                continue
            target = folder / name
            stored = _store_upload(stream, target, limit)
            if stored is None:
                message = (
                    f"{name} is over the {self.settings.ingest.max_file_mb:g} MB limit "
                    "(ingest.max_file_mb); it was not stored"
                )
                items.append(JobItem(str(target), error=message))
            elif name in seen or stored in seen:
                message = f"{name}: the same file is in this upload twice; it was ingested once"
                items.append(JobItem(str(target), error=message))
            else:
                seen.update((name, stored))
                items.append(JobItem(str(target)))
        self._set_access([item.path for item in items if item.error is None], access)
        return self._submit("upload", items, submitted_by)

    def submit_delete(self, doc_ids: list[str], submitted_by: str = "") -> Job:
        """Deletes go through the job queue too, so one process owns embedded Chroma's writes."""
        items = [JobItem(doc_id, action="delete") for doc_id in doc_ids]
        return self._submit("delete", items, submitted_by)

    def add_source(self, folder: Path) -> Source:
        if not folder.is_dir():
            raise UploadRejected(f"{folder} is not a folder")
        return self.store.add_source(str(folder.resolve()))

    def sync(self, folder: Path, submitted_by: str = "") -> Job:
        """New and changed files are ingested (unchanged ones are skipped cheaply by hash);
        documents whose file is gone from the folder are deleted."""
        folder = folder.resolve()
        if not folder.is_dir():
            raise UploadRejected(f"{folder} is not a folder")
        present = [path.resolve() for path in expand_paths([folder])]
        present_paths = {str(path) for path in present}
        gone = [
            record.path
            for record in self.catalog.list()
            if Path(record.path).is_relative_to(folder) and record.path not in present_paths
        ]
        items = [JobItem(str(path)) for path in present]
        items += [JobItem(path, action="delete") for path in gone]
        return self._submit("sync", items, submitted_by, source=str(folder))

    def retry_failed(self, submitted_by: str = "") -> Job | None:
        failed = [record.path for record in self.catalog.list() if record.status == "failed"]
        existing = [path for path in failed if Path(path).is_file()]
        if not existing:
            return None
        return self._submit("retry", [JobItem(path) for path in existing], submitted_by)


def build_ingest_jobs(components: Components, background: bool) -> IngestJobs:
    settings = components.settings
    catalog = Catalog.for_settings(settings)
    store = JobStore.for_settings(settings)

    @functools.cache
    def service() -> IngestService:
        return IngestService.for_components(components)

    dispatcher = build_dispatcher(settings, store, service, background)
    return IngestJobs(components, store, catalog, dispatcher)
