"""The appliance's domain records: what is stored, retrieved and answered."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class DocumentAccess:
    """The groups that may read a document, and the collection it belongs to."""

    groups: tuple[str, ...]
    collection: str

    def to_dict(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "collection": self.collection}


@dataclass(frozen=True)
class Chunk:
    """One indexed passage of a document version; its id is `doc_id:version:n`."""

    doc_id: str
    version: str
    n: int
    text: str
    path: str
    page: int | None = None
    section: str | None = None
    file_type: str = ""
    groups: tuple[str, ...] = ()
    collection: str = ""

    @property
    def chunk_id(self) -> str:
        return chunk_id(self.doc_id, self.version, self.n)


def chunk_id(doc_id: str, version: str, n: int) -> str:
    return f"{doc_id}:{version}:{n}"


@dataclass(frozen=True)
class Hit:
    """A chunk found by retrieval, with its cosine similarity to the query."""

    chunk_id: str
    doc_id: str
    version: str
    path: str
    page: int | None
    section: str | None
    score: float
    text: str
    collection: str = ""

    @classmethod
    def found(cls, chunk_id: str, text: str, metadata: dict[str, Any], score: float) -> Hit:
        """A hit from a chunk's text and stored metadata (ChromaChunkStore's keys)."""
        return cls(
            chunk_id=chunk_id,
            doc_id=metadata.get("doc_id", ""),
            version=metadata.get("version", ""),
            path=metadata.get("path", ""),
            page=metadata.get("page"),
            section=metadata.get("section"),
            score=score,
            text=text,
            collection=metadata.get("collection", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A numbered source given to the model; `cited` says whether the answer refers to it.

    `supported` is the citation check's verdict on a cited source (None when not cited or not
    checked): whether the sentences citing it share enough words with it (`overlap`).
    """

    number: int
    hit: Hit
    cited: bool
    supported: bool | None = None
    overlap: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "cited": self.cited,
            "supported": self.supported,
            "overlap": self.overlap,
            **self.hit.to_dict(),
        }


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    model: str = ""
    prompt_version: str = ""
    seconds_to_first_token: float | None = None
    seconds_total: float = 0.0
    # Whether any of this question's data was sent out of the building (the Cohere connector).
    left_building: bool = False
    # The best passage scored below answering.abstain_below: the model was not asked.
    abstained: bool = False
    # Set when the answer is not the model's: it was down or too slow, and the passages stand in.
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "citations": [citation.to_dict() for citation in self.citations],
            "model": self.model,
            "prompt_version": self.prompt_version,
            "seconds_to_first_token": self.seconds_to_first_token,
            "seconds_total": self.seconds_total,
            "left_building": self.left_building,
            "abstained": self.abstained,
            "notice": self.notice,
        }
