"""Ingest files into the index: detect, parse, chunk, embed, upsert, retire old versions, catalog.

The same code runs inline (the CLI's embedded default) and inside Celery tasks (ingest/runner.py).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.auth.access import access_for_path
from appliance.components.embedding import Embedder
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.container import Components
from appliance.domain import HEADER_CHARS, Chunk, DocumentAccess
from appliance.errors import (
    DocumentNotFound,
    DocumentRejected,
    DocumentTooLarge,
    DocumentUnreadable,
    EmptyDocument,
)
from appliance.observability.metrics import ingest_stage
from appliance.settings import Settings
from ingest.catalog import Catalog
from ingest.chunker import Chunker
from ingest.parsers import Block, ParseOptions, parser_for, supported_extensions

if TYPE_CHECKING:
    from appliance.audit.log import AuditLog

VERSION_HEX = 16


@dataclass(frozen=True)
class SourceFile:
    path: Path
    doc_id: str
    sha256: str
    size: int

    @property
    def version(self) -> str:
        return self.sha256[:VERSION_HEX]

    @classmethod
    def read(cls, path: Path) -> SourceFile:
        resolved = path.resolve()
        content = resolved.read_bytes()
        return cls(
            path=resolved,
            doc_id=document_id(resolved),
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
        )


def document_title(blocks: Sequence[Block], path: Path) -> str:
    """The document's first heading (a web page's h1, a manual's name), else its file name."""
    first = next((block.text for block in blocks if block.category == "Title"), None)
    return " ".join((first or path.stem).split())[:HEADER_CHARS]


def document_id(path: Path) -> str:
    """A document is identified by where it lives; its content decides its version."""
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:VERSION_HEX]


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: str  # indexed | unchanged | failed
    chunks: int = 0
    error: str | None = None
    doc_id: str | None = None
    version: str | None = None
    groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "groups": list(self.groups)}


@dataclass(frozen=True)
class ReadyFile:
    """A parsed and chunked file whose chunks wait to be embedded and written."""

    path: Path
    source: SourceFile
    access: DocumentAccess
    chunks: list[Chunk]


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def chunks_written(self) -> int:
        return sum(outcome.chunks for outcome in self.outcomes if outcome.status == "indexed")


def parse_options(settings: Settings) -> ParseOptions:
    return ParseOptions(
        strategy=settings.ingest.parser_strategy,
        max_line_bytes=int(settings.ingest.max_line_mb * 2**20),
        max_unpacked_bytes=int(settings.ingest.max_unpacked_mb * 2**20),
    )


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the supported files found under folders (sorted, so runs repeat).

    A folder scan follows no symbolic link, to a file or to a folder, and keeps no file whose
    real path leaves the folder: a link in a shared folder could otherwise make any file the
    service can read (its audit key, its catalog) a document anyone may download.
    """
    extensions = set(supported_extensions())
    files: list[Path] = []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            root = path.resolve()
            found = []
            for folder, _, names in os.walk(path, followlinks=False):
                for name in names:
                    candidate = Path(folder) / name
                    if candidate.suffix.lower() not in extensions or candidate.is_symlink():
                        continue
                    if candidate.is_file() and candidate.resolve().is_relative_to(root):
                        found.append(candidate)
            files.extend(sorted(found))
        else:
            files.append(path)
    return files


class IngestService:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: ChromaChunkStore,
        catalog: Catalog,
        audit: AuditLog | None = None,
    ) -> None:
        self._settings = settings
        self._audit = audit
        self._embedder = embedder
        self._store = store
        self._catalog = catalog
        self._chunker = Chunker(
            embedder, settings.ingest.chunk_tokens, settings.ingest.chunk_overlap_tokens
        )
        self._parse_options = parse_options(settings)

    @classmethod
    def for_components(cls, components: Components) -> IngestService:
        settings = components.settings
        return cls(
            settings,
            components.embedder,
            components.chunk_store,
            Catalog.for_settings(settings),
            components.audit,
        )

    @property
    def embed_batch_chunks(self) -> int:
        """Files are written together until they hold this many chunks between them."""
        return self._settings.ingest.embed_batch_chunks

    def record(self, kind: str, actor: str, payload: dict[str, Any]) -> None:
        """An audit record of an ingestion or deletion (no-op for a service built bare)."""
        if self._audit is not None:
            self._audit.append(kind, actor, [], payload)

    def ingest(
        self, paths: Iterable[Path], on_file: Callable[[FileOutcome], None] | None = None
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()

        def done(outcomes: list[FileOutcome]) -> None:
            report.outcomes.extend(outcomes)
            for outcome in outcomes if on_file else ():
                on_file(outcome)

        pending: list[ReadyFile] = []
        for path in expand_paths(paths):
            ready = self.prepare(path)
            if isinstance(ready, FileOutcome):
                done([ready])
                continue
            pending.append(ready)
            if sum(len(ready.chunks) for ready in pending) >= self.embed_batch_chunks:
                done(self.write(pending))
                pending = []
        done(self.write(pending))
        report.seconds = time.perf_counter() - started
        return report

    def access_for(self, doc_id: str, path: Path) -> DocumentAccess:
        """Groups given at upload win; otherwise the folder mapping in settings decides."""
        override = self._catalog.access_override(doc_id)
        return override or access_for_path(self._settings.access, path)

    def prepare(self, path: Path, indexed_since: float | None = None) -> FileOutcome | ReadyFile:
        """Checks, parses and chunks one file: its chunks, ready to embed, or its outcome
        (failed, unchanged) when there is nothing to embed.

        `indexed_since` is when the job began, for a file tried before: if the catalog shows
        the same version written since then, this job did index it (an attempt whose worker
        died before recording it, or a task Redis delivered twice), so it reports "indexed".
        """
        doc_id = document_id(path)
        access = self.access_for(doc_id, path)
        try:
            return self._prepare(path, access, indexed_since)
        except DocumentRejected as error:
            return self._failed(path, doc_id, access, error.message)

    def _failed(self, path: Path, doc_id: str, access: DocumentAccess, error: str) -> FileOutcome:
        self._catalog.mark_failed(doc_id, str(path.resolve()), error, access)
        return FileOutcome(str(path), "failed", error=error, doc_id=doc_id, groups=access.groups)

    def _prepare(
        self, path: Path, access: DocumentAccess, indexed_since: float | None
    ) -> FileOutcome | ReadyFile:
        if path.is_symlink():
            raise DocumentUnreadable(
                f"{path.name} is a symbolic link; links are not ingested, since one can point "
                "at any file the service may read: ingest the file it points to instead"
            )
        if not path.is_file():
            raise DocumentUnreadable(f"{path}: no such file")
        parse = parser_for(path)
        limit = self._settings.ingest.max_file_mb * 1024 * 1024
        if path.stat().st_size > limit:
            raise DocumentTooLarge(
                f"{path.name} is {path.stat().st_size / 2**20:.1f} MB, over the "
                f"{self._settings.ingest.max_file_mb:g} MB limit (ingest.max_file_mb)"
            )
        if path.stat().st_size == 0:
            raise EmptyDocument(f"{path.name} is empty (0 bytes)")
        source = SourceFile.read(path)
        known = self._catalog.get(source.doc_id)
        # Same bytes and same readers: nothing to do. New readers re-write the chunks' groups.
        if (
            known
            and known.status == "indexed"
            and known.version == source.version
            and known.access == access
        ):
            by_this_job = indexed_since is not None and known.updated_at >= indexed_since
            return FileOutcome(
                str(path), "indexed" if by_this_job else "unchanged",
                chunks=known.chunks if by_this_job else 0, doc_id=source.doc_id,
                version=source.version, groups=access.groups,
            )  # fmt: skip

        try:
            with ingest_stage("parse"):
                blocks = parse(source.path, self._parse_options)
        except DocumentRejected:
            raise
        except Exception as error:  # a parser's own failure is this document's failure only
            raise DocumentUnreadable(
                f"{path.name} could not be read as {path.suffix.lstrip('.').upper()}: "
                f"{type(error).__name__}: {error}"
            ) from error
        title = document_title(blocks, path)
        pieces = self._chunker.split(blocks, title)
        if not pieces:
            raise EmptyDocument(f"{path.name} contains no text to index")

        chunks = [
            Chunk(
                doc_id=source.doc_id,
                version=source.version,
                n=n,
                text=piece.text,
                path=str(source.path),
                page=piece.page,
                section=piece.section,
                file_type=path.suffix.lower().lstrip("."),
                groups=access.groups,
                collection=access.collection,
                title=title,
            )
            for n, piece in enumerate(pieces)
        ]
        return ReadyFile(path, source, access, chunks)

    def write(self, files: Sequence[ReadyFile]) -> list[FileOutcome]:
        """Embeds several files' chunks together, writes them in one upsert, then retires the
        versions they replace and catalogs each file.

        Embedding across files fills the encoder's batches (most documents have fewer chunks
        than one batch). Chunk ids are `doc_id:version:n`, so a write cut short by a crash is
        simply done again; a file's catalog row changes only once its chunks are all in.
        """
        chunks = [chunk for ready in files for chunk in ready.chunks]
        if not chunks:
            return []
        with ingest_stage("embed"):
            embeddings = self._embedder.embed_documents([chunk.retrieval_text for chunk in chunks])
        # New versions first, then the old ones go: a reader never sees a document missing.
        with ingest_stage("upsert"):
            self._store.upsert(chunks, embeddings)
        self._store.delete_other_versions(
            {ready.source.doc_id: ready.source.version for ready in files}
        )
        outcomes = []
        for ready in files:
            source = ready.source
            self._catalog.mark_indexed(
                source.doc_id,
                str(source.path),
                source.version,
                source.sha256,
                len(ready.chunks),
                source.size,
                ready.access,
            )
            outcome = FileOutcome(
                str(ready.path), "indexed", chunks=len(ready.chunks), doc_id=source.doc_id,
                version=source.version, groups=ready.access.groups,
            )  # fmt: skip
            outcomes.append(outcome)
        return outcomes

    def delete(self, path_or_id: str) -> str:
        """Remove a document's chunks and catalog row; takes a path or a document id."""
        # The path as recorded first: resolving it would follow a link that replaced the file.
        record = (
            self._catalog.get(path_or_id)
            or self._catalog.find_by_path(os.path.abspath(path_or_id))
            or self._catalog.find_by_path(str(Path(path_or_id).resolve()))
        )
        doc_id = record.doc_id if record else document_id(Path(path_or_id))
        if not record and not self._store.chunk_ids(doc_id):
            raise DocumentNotFound(f"no indexed document matches {path_or_id}")
        self._store.delete_document(doc_id)
        self._catalog.delete(doc_id)
        return doc_id
