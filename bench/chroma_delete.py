"""What deleting a big document costs in Chroma's local store, by what is stored per chunk.

    .venv/bin/python bench/chroma_delete.py [--repeats 3]

One document of 10,890 chunks (the chunk count of the 7.5 MB text document in bench/ingest.py)
beside 1,122 chunks of 40 others, random unit vectors, chunk texts cut from a real git manual
(so the full-text index holds real trigrams), in a fresh PersistentClient per row. Rows: chunk
texts in Chroma's `documents` or not, texts kept without Chroma's full-text index (a collection
`Schema` that drops it), and the metadata the appliance wrote before its chunk records
(llama-index's flat node: a dozen keys, `_node_content` among them) or what it writes now (the
three fields its filters read: doc_id, collection, groups). The rows are interleaved and
repeated, since a delete varies by 0.4 s between runs on a quiet machine; the table gives the
median and each run. It answers why chunk texts and sources live beside Chroma
(appliance/components/vector_store/chunk_records.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb import FtsIndexConfig, Schema, VectorIndexConfig
from chromadb.config import Settings

BIG, OTHERS = 10_890, 1_122
MANUAL = Path("/usr/share/doc/git/html/git-rebase.txt")
NODE = json.dumps(
    {
        "id_": "d:v:0",
        "metadata": {"doc_id": "d", "path": "/srv/docs/big.txt", "page": None},
        "relationships": {"1": {"node_id": "d", "node_type": "4", "metadata": {}}},
        "excluded_embed_metadata_keys": ["doc_id", "version", "path", "collection"],
    }
)


def before_records(doc_id: str, n: int) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "version": "v1",
        "chunk_index": n,
        "path": f"/srv/docs/{doc_id}.txt",
        "file_type": "txt",
        "collection": "eng",
        "section": "DESCRIPTION",
        "_node_content": NODE,
        "_node_type": "TextNode",
        "document_id": doc_id,
        "ref_doc_id": doc_id,
        "groups": ["eng", "everyone"],
    }


def filter_fields(doc_id: str, n: int) -> dict[str, Any]:
    return {"doc_id": doc_id, "collection": "eng", "groups": ["eng", "everyone"]}


def texts(count: int) -> list[str]:
    words = (MANUAL.read_text() if MANUAL.is_file() else "lorem ipsum dolor " * 5000).split()
    span = len(words) - 200
    return [" ".join(words[(i * 97) % span : (i * 97) % span + 180]) for i in range(count)]


def chunk_collection(client: chromadb.ClientAPI, full_text: bool) -> chromadb.Collection:
    if full_text:
        return client.create_collection("chunks", metadata={"hnsw:space": "cosine"})
    # The texts are stored, but Chroma keeps no full-text (trigram) index of them.
    schema = Schema()
    schema.create_index(config=VectorIndexConfig(space="cosine", embedding_function=None))
    schema.delete_index(config=FtsIndexConfig(), key="#document")
    return client.create_collection("chunks", schema=schema)


def row(with_texts: bool, metadata: Any, full_text: bool = True) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-chroma-") as folder:
        return timed_delete(Path(folder), with_texts, metadata, full_text)


def timed_delete(
    folder: Path, with_texts: bool, metadata: Any, full_text: bool
) -> tuple[float, float, float]:
    total = BIG + OTHERS
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((total, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    doc_ids = ["big"] * BIG + [f"other{i % 40}" for i in range(OTHERS)]
    ids = [f"{doc_id}:v1:{n}" for n, doc_id in enumerate(doc_ids)]
    chunk_texts = texts(total)
    client = chromadb.PersistentClient(str(folder), settings=Settings(anonymized_telemetry=False))
    collection = chunk_collection(client, full_text)
    batch = client.get_max_batch_size()
    started = time.perf_counter()
    for start in range(0, total, batch):
        part = slice(start, start + batch)
        collection.upsert(
            ids=ids[part],
            embeddings=vectors[part],
            metadatas=[metadata(doc_ids[n], n) for n in range(start, min(total, start + batch))],
            documents=chunk_texts[part] if with_texts else None,
        )
    upsert_s = time.perf_counter() - started
    started = time.perf_counter()
    found = collection.get(where={"doc_id": "big"}, include=[])["ids"]
    lookup_s = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(found), batch):
        collection.delete(ids=found[start : start + batch])
    delete_s = time.perf_counter() - started
    assert collection.count() == OTHERS
    return upsert_s, lookup_s, delete_s


ROWS = (
    # texts in Chroma, full-text index, metadata name, metadata
    (True, True, "as written before chunk records", before_records),
    (True, False, "as written before chunk records", before_records),
    (False, True, "as written before chunk records", before_records),
    (False, True, "filter fields only (as written now)", filter_fields),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    runs: list[list[tuple[float, float, float]]] = [[] for _ in ROWS]
    for _ in range(repeats):
        for n, (with_texts, full_text, _, metadata) in enumerate(ROWS):
            runs[n].append(row(with_texts, metadata, full_text))
            print(".", end="", flush=True)
    print()
    print(
        "| chunk texts in Chroma | full-text index | metadata "
        f"| upsert of {BIG + OTHERS} chunks, s | ids lookup, s | delete of {BIG}, s (median) "
        "| each run, s |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for (with_texts, full_text, name, _), results in zip(ROWS, runs, strict=True):
        columns = zip(*results, strict=True)
        upsert_s, lookup_s, delete_s = (statistics.median(column) for column in columns)
        each = " / ".join(f"{result[2]:.2f}" for result in results)
        print(
            f"| {'yes' if with_texts else 'no'} | {'on' if full_text else 'off'} | {name} "
            f"| {upsert_s:.1f} | {lookup_s:.2f} | {delete_s:.2f} | {each} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
