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
    # The document's title (its first heading, else its file name): part of what retrieval
    # reads, so a passage under "work_mem" on the page "Resource Consumption" is found by both.
    title: str | None = None

    @property
    def chunk_id(self) -> str:
        return chunk_id(self.doc_id, self.version, self.n)

    @property
    def retrieval_text(self) -> str:
        return retrieval_text(self.text, self.title, self.section)


def chunk_id(doc_id: str, version: str, n: int) -> str:
    return f"{doc_id}:{version}:{n}"


# Headers longer than this are cut: they share the embedder's window with the passage.
HEADER_CHARS = 160


def context_header(title: str | None, section: str | None) -> str:
    """Where a passage sits, "title › section", as embedding and lexical search read it."""
    parts = [part for part in (title, section) if part]
    if len(parts) == 2 and parts[1].casefold() in parts[0].casefold():
        parts = parts[:1]
    return " › ".join(parts)[:HEADER_CHARS]


# A line this short without a sentence's end names what follows it (a setting name above its
# description, a term above its definition, an option above what it does): not a sentence.
LABEL_WORDS = 8


def is_label(line: str) -> bool:
    # A short line that names what follows: "work_mem (integer)", a heading. A line with no
    # letter ("0.19999999999999996", an example's output) names nothing.
    return (
        len(line.split()) <= LABEL_WORDS
        and not line.rstrip().endswith((".", "!", "?", ":"))
        and any(character.isalpha() for character in line)
    )


def retrieval_text(text: str, title: str | None, section: str | None) -> str:
    """A chunk's text as retrieval reads it: its header line, then the text shown to people."""
    header = context_header(title, section)
    return f"{header}\n{text}" if header else text


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
    title: str | None = None

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
            title=metadata.get("title"),
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
    # Set when the answer is not (all) the model's: it was down or too slow, or it stated
    # something the passages do not contain, and quotes of the passages stand in.
    notice: str | None = None
    # generate: a language model wrote it; extract: quoted from the passages.
    mode: str = "generate"
    # The model's numbers, identifiers and quotes that no passage contains ({text, kind}).
    unsupported_claims: list[dict[str, Any]] = field(default_factory=list)
    # What answering.unsupported did with them (flag, replace, off); None: nothing generated.
    claim_check: str | None = None
    # The model was stopped at an unsupported claim and the quotes follow (replace).
    replaced: bool = False
    # Tokens the model streamed for it (0 when nothing was generated): counted against the
    # key's and its groups' limits.tokens_per_day.
    generated_tokens: int = 0

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
            "mode": self.mode,
            "unsupported_claims": self.unsupported_claims,
            "claim_check": self.claim_check,
            "replaced": self.replaced,
            "generated_tokens": self.generated_tokens,
        }
