"""Ingest files into the index: detect, parse, chunk, embed, upsert, retire old versions, catalog.

The same code runs inline (the CLI's embedded default) and, later, inside Celery tasks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.auth.access import access_for_path
from appliance.components.embedding import Embedder
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.container import Components
from appliance.domain import Chunk, DocumentAccess
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
from ingest.parsers import ParseOptions, parser_for, supported_extensions

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


@dataclass
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def chunks_written(self) -> int:
        return sum(outcome.chunks for outcome in self.outcomes if outcome.status == "indexed")


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the supported files found under folders (sorted, so runs repeat)."""
    extensions = set(supported_extensions())
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
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
        self._parse_options = ParseOptions(
            strategy=settings.ingest.parser_strategy,
            max_line_bytes=int(settings.ingest.max_line_mb * 2**20),
            max_unpacked_bytes=int(settings.ingest.max_unpacked_mb * 2**20),
        )

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

    def record(self, kind: str, actor: str, payload: dict[str, Any]) -> None:
        """An audit record of an ingestion or deletion (no-op for a service built bare)."""
        if self._audit is not None:
            self._audit.append(kind, actor, [], payload)

    def ingest(
        self, paths: Iterable[Path], on_file: Callable[[FileOutcome], None] | None = None
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        for path in expand_paths(paths):
            outcome = self.ingest_file(path)
            report.outcomes.append(outcome)
            if on_file:
                on_file(outcome)
        report.seconds = time.perf_counter() - started
        return report

    def access_for(self, doc_id: str, path: Path) -> DocumentAccess:
        """Groups given at upload win; otherwise the folder mapping in settings decides."""
        override = self._catalog.access_override(doc_id)
        return override or access_for_path(self._settings.access, path)

    def ingest_file(self, path: Path) -> FileOutcome:
        doc_id = document_id(path)
        access = self.access_for(doc_id, path)
        try:
            return self._ingest_file(path, access)
        except DocumentRejected as error:
            self._catalog.mark_failed(doc_id, str(path.resolve()), error.message, access)
            return FileOutcome(
                str(path), "failed", error=error.message, doc_id=doc_id, groups=access.groups
            )

    def _ingest_file(self, path: Path, access: DocumentAccess) -> FileOutcome:
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
            return FileOutcome(
                str(path), "unchanged", doc_id=source.doc_id, version=source.version,
                groups=access.groups,
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
        pieces = self._chunker.split(blocks)
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
            )
            for n, piece in enumerate(pieces)
        ]
        with ingest_stage("embed"):
            embeddings = self._embedder.embed_documents([chunk.text for chunk in chunks])
        # New version first, then the old one goes: a reader never sees the document missing.
        with ingest_stage("upsert"):
            self._store.upsert(chunks, embeddings)
        self._store.delete_other_versions(source.doc_id, source.version)
        self._catalog.mark_indexed(
            source.doc_id,
            str(source.path),
            source.version,
            source.sha256,
            len(chunks),
            source.size,
            access,
        )
        return FileOutcome(
            str(path), "indexed", chunks=len(chunks), doc_id=source.doc_id,
            version=source.version, groups=access.groups,
        )  # fmt: skip

    def delete(self, path_or_id: str) -> str:
        """Remove a document's chunks and catalog row; takes a path or a document id."""
        record = self._catalog.get(path_or_id) or self._catalog.find_by_path(
            str(Path(path_or_id).resolve())
        )
        doc_id = record.doc_id if record else document_id(Path(path_or_id))
        if not record and not self._store.chunk_ids(doc_id):
            raise DocumentNotFound(f"no indexed document matches {path_or_id}")
        self._store.delete_document(doc_id)
        self._catalog.delete(doc_id)
        return doc_id
