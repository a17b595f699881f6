"""Ingest speed on Debian's git-doc: our pipeline (torch, OpenVINO), llama-index's, bare encode."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CORPUS = Path("/usr/share/doc/git/html")
INSTALL_CORPUS = "apt-get update && apt-get install -y git-doc"
DELETE_MB = 7.5
DELETE_REPEATS = 3
TOP_K = 5

# Question -> the man page that answers it (file name under CORPUS).
GOLD: dict[str, str] = {
    "How do I find the commit that introduced a bug by binary search?": "git-bisect.txt",
    "How can I put my uncommitted changes aside and restore them later?": "git-stash.txt",
    "How do I apply the change made by an existing commit onto my branch?": "git-cherry-pick.txt",
    "Which commit and author last changed each line of a file?": "git-blame.txt",
    "Where can I see every position HEAD has pointed to, to recover a lost commit?": (
        "git-reflog.txt"
    ),
    "How can I have several branches checked out at once in separate directories?": (
        "git-worktree.txt"
    ),
    "How do I embed another repository inside mine, pinned to one commit?": "git-submodule.txt",
    "How do I make git ignore build output files so they are not tracked?": "gitignore.txt",
    "How do I delete untracked files from the working tree?": "git-clean.txt",
    "How do I create a GPG-signed annotated tag for a release?": "git-tag.txt",
    "How do I record a new commit that undoes the changes of an earlier one?": "git-revert.txt",
    "How do I turn my commits into patch files to send by email?": "git-format-patch.txt",
    "How do I clean up unnecessary files and optimize the local repository?": "git-gc.txt",
    "How do I squash several commits into one while rewriting history interactively?": (
        "git-rebase.txt"
    ),
    "How do I list the remote repositories I track and add another one?": "git-remote.txt",
    "How do I search tracked files for lines matching a pattern?": "git-grep.txt",
}


# ---------------------------------------------------------------- corpus


def ensure_corpus(corpus: Path) -> None:
    if any(corpus.glob("*.txt")):
        return
    if corpus != CORPUS:
        sys.exit(f"no .txt files in {corpus}")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"{corpus} is missing: run `sudo sh -c '{INSTALL_CORPUS}'`, then run this again")
    print(f"{corpus} is missing; installing Debian's git-doc: {INSTALL_CORPUS}", flush=True)
    subprocess.run(["sh", "-c", INSTALL_CORPUS], check=True, stdout=subprocess.DEVNULL)


def select_files(corpus: Path, limit: int | None) -> list[Path]:
    """The corpus's top-level .txt files; a limit keeps the gold set's files, then the first."""
    files = sorted(corpus.glob("*.txt"))
    if limit is None or limit >= len(files):
        return files
    gold = [path for path in files if path.name in set(GOLD.values())]
    rest = [path for path in files if path not in gold]
    return sorted(gold[:limit] + rest[: max(0, limit - len(gold))])


# ---------------------------------------------------------------- measuring, in each child


def peak_rss_mib() -> float:
    """This process's peak, plus its largest child's (a parsing worker, when there is one)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def cpu_seconds() -> float:
    """User and system CPU time of this process and its finished children."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


class Stopwatch:
    """Seconds spent inside wrapped methods, and the texts handed to the embedder."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.texts: list[str] = []

    def wrap(self, key: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started

        return timed

    def wrap_embedder(self, embedder: Any) -> None:
        embed = self.wrap("embed", embedder.embed_documents)

        def recorded(texts: list[str]) -> list[list[float]]:
            self.texts.extend(texts)
            return embed(texts)

        embedder.embed_documents = recorded


class Region:
    """Wall and CPU seconds of a `with` block."""

    def __enter__(self) -> Region:
        self._wall, self._cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_s = cpu_seconds() - self._cpu


def appliance_settings(data_dir: Path, **overrides: str) -> Any:
    from appliance.settings import load_settings

    environ = {"APPLIANCE_DATA_DIR": str(data_dir)}
    environ |= {f"APPLIANCE__{key.upper()}": value for key, value in overrides.items()}
    return load_settings(profiles=["embedded"], environ=environ)


def use_senter_for_unstructured() -> None:
    """unstructured's sentence counts from spaCy's small `senter` instead of its full parser."""
    import spacy
    from unstructured.nlp import tokenize

    import ingest.parsers.unstructured_elements as elements

    @functools.lru_cache(maxsize=1)
    def load() -> Any:
        nlp = spacy.load(elements.SPACY_MODEL_PACKAGE, exclude=[*tokenize._SPACY_EXCLUDE, "parser"])
        nlp.enable_pipe("senter")
        return nlp

    elements._load_local_spacy_model = load


def classify_every_paragraph() -> None:
    """unstructured's own classification of every paragraph, without classify_titles_only."""
    from unstructured.partition import text, text_type

    import ingest.parsers.unstructured_elements as elements

    elements.classify_titles_only()  # cached: the parser's own call later does nothing
    text.is_possible_narrative_text = text_type.is_possible_narrative_text


def parse_ahead_in_a_worker(files: list[Path]) -> Any:
    """Parse every file in one worker process, ahead of the service that chunks and embeds."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import ingest.service
    from ingest.parsers import parser_for

    # spawn, not fork: a forked copy of a process that has run torch can hang in OpenMP.
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    futures = {path.resolve(): pool.submit(_parse, path) for path in files}
    real_parser_for = parser_for

    def prefetched_parser_for(path: Path) -> Callable[..., Any]:
        real_parser_for(path)  # unsupported types still fail the same way
        return lambda source, options: futures[Path(source).resolve()].result()

    ingest.service.parser_for = prefetched_parser_for
    return pool


def _parse(path: Path) -> Any:
    from ingest.parsers import ParseOptions, parser_for

    return parser_for(path)(path, ParseOptions())


def pipeline_overrides(variant: str) -> dict[str, str]:
    """An (a) row's settings, from its name: `[openvino-]fp32|bf16[-bsN][-perfile][-experiment]`."""
    words = variant.split("-")
    backend = "openvino" if words[0] == "openvino" else "torch"
    precision = "bf16" if "bf16" in words else "fp32"
    overrides = {"embedding__backend": backend, "embedding__precision": precision}
    for word in words:
        if word.startswith("bs") and word[2:].isdigit():
            overrides["embedding__batch_size"] = word[2:]
    if "perfile" in words:
        # Each file embedded and written on its own, as before ingest.embed_batch_chunks.
        overrides["ingest__embed_batch_chunks"] = "1"
    return overrides


def run_pipeline(files: list[Path], work: Path, variant: str) -> dict[str, Any]:
    """(a): this project's pipeline as `appliance ingest` runs it: a job, run inline."""
    from appliance.container import Components
    from ingest.jobs import build_ingest_jobs

    settings = appliance_settings(work / f"a-{variant}", **pipeline_overrides(variant))
    if variant.endswith("-senter"):
        use_senter_for_unstructured()
    if variant.endswith("-fullparse"):
        classify_every_paragraph()
    components = Components(settings)
    watch = Stopwatch()
    watch.wrap_embedder(components.embedder)
    store = components.chunk_store
    store.upsert = watch.wrap("store", store.upsert)
    store.delete_other_versions = watch.wrap("store", store.delete_other_versions)
    jobs = build_ingest_jobs(components, background=False)
    with Region() as region:
        pool = parse_ahead_in_a_worker(files) if variant.endswith("-overlap") else None
        job = jobs.submit_paths(files, submitted_by="bench")
        if pool is not None:
            pool.shutdown()
    failed = [item for item in job.files if item.status == "failed"]
    return {
        "seconds": region.seconds,
        "cpu_s": region.cpu_s,
        "files": len(files),
        "indexed": job.count("indexed"),
        "failed": [f"{Path(item.path).name}: {item.error}" for item in failed],
        "chunks": job.chunks_written,
        "tokens": sum(components.embedder.count_tokens(text) for text in watch.texts),
        "embed_s": watch.seconds.get("embed", 0.0),
        "store_s": watch.seconds.get("store", 0.0),
    }


def run_llama_index(files: list[Path], work: Path) -> dict[str, Any]:
    """(b): SimpleDirectoryReader + SentenceSplitter + VectorStoreIndex.from_documents, defaults."""
    import chromadb
    from chromadb.config import Settings as ChromaClientSettings
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from appliance.components.embedding import build_embedder
    from appliance.retrieval.dense import _EmbedderAdapter

    # llama-index's own HuggingFace embedding is torch at fp32: the same here, whatever the default.
    settings = appliance_settings(
        work / "b-llama-index", embedding__backend="torch", embedding__precision="fp32"
    )
    embedder = build_embedder(settings.embedding)
    watch = Stopwatch()
    watch.wrap_embedder(embedder)
    client = chromadb.PersistentClient(
        path=str(settings.chroma_dir), settings=ChromaClientSettings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection("bench", metadata={"hnsw:space": "cosine"})
    # Counted in the embedder's word pieces, so a chunk is the same size as in (a).
    splitter = SentenceSplitter(
        chunk_size=settings.ingest.chunk_tokens,
        chunk_overlap=settings.ingest.chunk_overlap_tokens,
        tokenizer=embedder.token_spans,
    )
    with Region() as region:
        documents = SimpleDirectoryReader(input_files=[str(path) for path in files]).load_data()
        VectorStoreIndex.from_documents(
            documents,
            storage_context=StorageContext.from_defaults(
                vector_store=ChromaVectorStore(chroma_collection=collection)
            ),
            embed_model=_EmbedderAdapter(embedder),
            transformations=[splitter],
        )
    return {
        "seconds": region.seconds,
        "cpu_s": region.cpu_s,
        "files": len(files),
        "indexed": len({doc.metadata["file_path"] for doc in documents}),
        "failed": [],
        "chunks": collection.count(),
        "tokens": sum(embedder.count_tokens(text) for text in watch.texts),
        "embed_s": watch.seconds.get("embed", 0.0),
    }


def run_bare_encode(files: list[Path], work: Path, variant: str) -> dict[str, Any]:
    """(c): (a)'s chunk texts through the encoder alone, in one call.

    fp32, bf16: SentenceTransformer.encode (bf16 by torch autocast). openvino-*: the OpenVINO
    embedder's embed_documents. onnxruntime-fp32: the same ONNX export run by ONNX Runtime with
    all graph optimizations, batched and pooled as sentence-transformers does.
    """
    import numpy as np

    from appliance.components.vector_store import build_chunk_store

    # (a)'s chunk texts, the same in every (a) row (one chunker): those of the row judged.
    settings = appliance_settings(work / f"a-{BEST.split('/')[1]}")
    ids, texts, metadatas = build_chunk_store(settings).all_chunks()
    encode = bare_encoder(variant, settings)
    with Region() as region:
        vectors = encode(texts)
    np.save(work / f"c-{variant}.npy", np.asarray(vectors, dtype=np.float32))
    (work / f"c-{variant}.ids.json").write_text(json.dumps(ids))
    names = [Path(metadata["path"]).name for metadata in metadatas]
    (work / f"c-{variant}.files.json").write_text(json.dumps(names))
    from appliance.components.embedding import build_embedder

    counter = build_embedder(settings.embedding)
    return {
        "seconds": region.seconds,
        "cpu_s": region.cpu_s,
        "files": len(files),
        "indexed": len(files),
        "failed": [],
        "chunks": len(texts),
        "tokens": sum(counter.count_tokens(text) for text in texts),
        "embed_s": region.seconds,
    }


def bare_encoder(variant: str, settings: Any) -> Callable[[list[str]], Any]:
    """A function from texts to unit vectors, loaded before the clock starts."""
    import numpy as np

    match variant.split("-"):
        case [("fp32" | "bf16") as precision]:
            import torch
            from sentence_transformers import SentenceTransformer

            from appliance.components.embedding.sentence_transformers import resolve_model_dir

            model = SentenceTransformer(
                str(resolve_model_dir(settings.embedding.model)),
                device="cpu",
                local_files_only=True,
            )

            def encode(texts: list[str]) -> Any:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    return model.encode(
                        texts, batch_size=settings.embedding.batch_size, normalize_embeddings=True
                    )

            return encode
        case ["openvino", precision]:
            from appliance.components.embedding import build_embedder

            embedder = build_embedder(
                settings.embedding.model_copy(
                    update={"backend": "openvino", "precision": precision}
                )
            )
            return embedder.embed_documents
        case ["onnxruntime", "fp32"]:
            import onnxruntime

            from appliance.components.embedding.openvino import OpenVINOEmbedder

            exporter = OpenVINOEmbedder(
                settings.embedding.model_copy(update={"backend": "openvino"})
            )
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            # The exporter's private method: the bench runs the very graph OpenVINO gets.
            session = onnxruntime.InferenceSession(
                exporter._export_onnx(), options, providers=["CPUExecutionProvider"]
            )
            tokenizer, names = exporter._tokenizer, exporter._input_names
            size = settings.embedding.batch_size

            def encode(texts: list[str]) -> Any:
                order = np.argsort([-len(text) for text in texts], kind="stable")
                vectors = np.empty((len(texts), exporter.dimension), dtype=np.float32)
                for start in range(0, len(texts), size):
                    batch = order[start : start + size]
                    encoded = tokenizer(
                        [texts[i] for i in batch], padding=True, truncation=True,
                        max_length=256, return_tensors="np",
                    )  # fmt: skip
                    vectors[batch] = session.run(None, {n: encoded[n] for n in names})[0]
                return vectors

            return encode
    raise ValueError(f"unknown bare encoder {variant}")


def run_row(row: str, files: list[Path], work: Path) -> dict[str, Any]:
    began = time.perf_counter()
    match row.split("/"):
        case ["a", variant]:
            result = run_pipeline(files, work, variant)
        case ["b"]:
            result = run_llama_index(files, work)
        case ["c", variant]:
            result = run_bare_encode(files, work, variant)
        case _:
            raise ValueError(f"unknown row {row}")
    result["startup_s"] = time.perf_counter() - began - result["seconds"]
    result["peak_rss_mib"] = peak_rss_mib()
    return result


# ---------------------------------------------------------------- agreement and retrieval


def agreement(vectors: Any, reference: Any) -> dict[str, float]:
    values = (vectors * reference).sum(axis=1)
    return {"mean": float(values.mean()), "min": float(values.min()), "n": len(values)}


def cosines(work: Path, store_dir: str) -> dict[str, float]:
    """Each (a) chunk's stored embedding against (c)'s fp32 one for the same chunk id."""
    import numpy as np

    from appliance.components.vector_store import build_chunk_store

    ids = json.loads((work / "c-fp32.ids.json").read_text())
    reference = np.load(work / "c-fp32.npy")
    store = build_chunk_store(appliance_settings(work / store_dir))
    stored = store.collection.get(ids=ids, include=["embeddings"])
    by_id = dict(zip(stored["ids"], stored["embeddings"], strict=True))
    return agreement(np.array([by_id[chunk_id] for chunk_id in ids], dtype=np.float32), reference)


def top_k(
    collection: Any, embedder: Any, questions: list[str], path_key: str, store: Any = None
) -> list[list[Any]]:
    """Each question's top chunks as (chunk id, file name); `store`: the appliance's chunk store,
    whose records hold the paths its Chroma collection leaves out."""
    result = collection.query(
        query_embeddings=[embedder.embed_query(question) for question in questions],
        n_results=TOP_K,
        include=["metadatas"],
    )
    found = []
    for ids, metas in zip(result["ids"], result["metadatas"], strict=True):
        if store is not None:
            _, metas = store.complete(ids, metas)
        found.append([(i, Path(meta[path_key]).name) for i, meta in zip(ids, metas, strict=True)])
    return found


def exact_top_k(work: Path, embedder: Any, questions: list[str]) -> list[list[Any]]:
    """The reference top-k: exact cosine search over (c)-fp32's vectors, fp32 queries."""
    import numpy as np

    vectors = np.load(work / "c-fp32.npy")
    ids = json.loads((work / "c-fp32.ids.json").read_text())
    names = json.loads((work / "c-fp32.files.json").read_text())
    found = []
    for question in questions:
        scores = vectors @ np.asarray(embedder.embed_query(question), dtype=np.float32)
        best = np.argsort(-scores, kind="stable")[:TOP_K]
        found.append([(ids[i], names[i]) for i in best])
    return found


def run_quality(files: list[Path], work: Path) -> dict[str, Any]:
    """Each (a) row against fp32: stored vectors, query vectors, gold-set top-5."""
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaClientSettings

    from appliance.components.embedding import build_embedder
    from appliance.components.vector_store import build_chunk_store

    names = {path.name for path in files}
    gold = {question: name for question, name in GOLD.items() if name in names}
    questions = list(gold)
    embedders: dict[str, Any] = {}
    found: dict[str, list[list[Any]]] = {}
    for store_dir in sorted(path.name for path in work.glob("a-*") if path.is_dir()):
        settings = appliance_settings(work / store_dir, **pipeline_overrides(store_dir[2:]))
        key = (settings.embedding.backend, settings.embedding.precision)
        if key not in embedders:
            embedders[key] = build_embedder(settings.embedding)
        store = build_chunk_store(settings)
        found[store_dir] = top_k(store.collection, embedders[key], questions, "path", store)
    fp32 = embedders.get(("torch", "fp32")) or build_embedder(
        appliance_settings(
            work / "fp32", embedding__backend="torch", embedding__precision="fp32"
        ).embedding
    )
    found["fp32 exact"] = exact_top_k(work, fp32, questions)
    llama_dir = appliance_settings(work / "b-llama-index").chroma_dir
    if llama_dir.is_dir():
        client = chromadb.PersistentClient(
            path=str(llama_dir), settings=ChromaClientSettings(anonymized_telemetry=False)
        )
        found["b"] = top_k(client.get_collection("bench"), fp32, questions, "file_path")
    hits = {
        name: sum(gold[q] in {f for _, f in top} for q, top in zip(questions, tops, strict=True))
        for name, tops in found.items()
    }
    versus_fp32 = {}
    for store_dir, tops in found.items():
        if not store_dir.startswith("a-"):
            continue
        settings = appliance_settings(work / store_dir, **pipeline_overrides(store_dir[2:]))
        fast = embedders[(settings.embedding.backend, settings.embedding.precision)]
        pairs = list(zip(found["fp32 exact"], tops, strict=True))
        versus_fp32[store_dir] = {
            "same_order": sum([i for i, _ in x] == [i for i, _ in y] for x, y in pairs),
            "same_set": sum({i for i, _ in x} == {i for i, _ in y} for x, y in pairs),
            "query_cos_min": min(
                (float(np.dot(fp32.embed_query(q), fast.embed_query(q))) for q in questions),
                default=None,
            ),
            "cos": cosines(work, store_dir),
        }
    reference = np.load(work / "c-fp32.npy")
    bare = {
        path.stem: agreement(np.load(path), reference)
        for path in sorted(work.glob("c-*.npy"))
        if path.stem != "c-fp32"
    }
    return {
        "questions": len(questions),
        "hits": hits,
        "versus_fp32": versus_fp32,
        "bare": bare,
        "misses": {
            name: [
                gold[q]
                for q, top in zip(questions, tops, strict=True)
                if gold[q] not in {f for _, f in top}
            ]
            for name, tops in found.items()
        },
    }


# ---------------------------------------------------------------- deleting a big document


def big_text(files: list[Path], size: int) -> str:
    """The corpus's text, repeated until it is `size` bytes."""
    parts: list[str] = []
    total = 0
    while total < size:
        for path in files:
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(text)
            total += len(text.encode())
            if total >= size:
                break
    return "".join(parts).encode()[:size].decode(errors="ignore")


def run_delete(files: list[Path], work: Path) -> dict[str, Any]:
    """Upsert one 7.5 MB document's chunks beside the corpus, then time deleting them."""
    import numpy as np

    from appliance.auth.access import access_for_path
    from appliance.auth.principal import Principal
    from appliance.components.embedding import build_embedder
    from appliance.components.vector_store import build_chunk_store
    from appliance.domain import Chunk
    from appliance.retrieval.lexical import LexicalIndex
    from ingest.chunker import Chunker
    from ingest.parsers import Block
    from ingest.service import SourceFile

    path = work / "big-document.txt"
    path.write_text(big_text(files, int(DELETE_MB * 2**20)), encoding="utf-8")
    settings = appliance_settings(work / f"a-{BEST.split('/')[1]}")
    source = SourceFile.read(path)
    # Paragraphs as blocks, not unstructured: parsing 7.5 MB would take minutes, and only the
    # delete is measured here.
    paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    chunker = Chunker(
        build_embedder(settings.embedding),
        settings.ingest.chunk_tokens,
        settings.ingest.chunk_overlap_tokens,
    )
    pieces = chunker.split([Block(text=p, category="NarrativeText") for p in paragraphs])
    # Readers as the service would give them, so the chunks carry the same metadata as the corpus's.
    access = access_for_path(settings.access, path)
    chunks = [
        Chunk(
            source.doc_id, source.version, n, piece.text, str(source.path), file_type="txt",
            groups=access.groups, collection=access.collection,
        )
        for n, piece in enumerate(pieces)
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(chunks), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = build_chunk_store(settings)
    before = store.count()
    # When the purge begins the document is hidden from every search: what a reader sees.
    purge, purge_started = store._delete_ids, []

    def timed_purge(ids: list[str]) -> None:
        purge_started.append(time.perf_counter())
        purge(ids)

    store._delete_ids = timed_purge  # type: ignore[method-assign]
    # Two cases, DELETE_REPEATS times each. "last": the document is the last thing written, so
    # Chroma's HNSW index may not yet have taken in its last writes (it syncs every 1,000
    # records). "settled": another document's 1,100 chunks were written after it, as a
    # document usually sits in the index.
    later = [dataclasses.replace(chunk, doc_id=f"later-{source.doc_id}") for chunk in chunks[:1100]]
    upsert_s: list[float] = []
    times: dict[str, list[float]] = {"last": [], "settled": []}
    hidden_s: list[float] = []
    for _ in range(DELETE_REPEATS):
        for case, written_after in (("last", []), ("settled", later)):
            started = time.perf_counter()
            store.upsert(chunks, vectors.tolist())
            upsert_s.append(time.perf_counter() - started)
            if written_after:
                store.upsert(written_after, vectors[: len(written_after)].tolist())
            purge_started.clear()
            started = time.perf_counter()
            store.delete_document(source.doc_id)
            times[case].append(time.perf_counter() - started)
            hidden_s.append(purge_started[0] - started)
            if written_after:
                store.delete_document(written_after[0].doc_id)
    store._delete_ids = purge  # type: ignore[method-assign]
    left, count_after = len(store.chunk_ids(source.doc_id)), store.count()
    # The lexical side: BM25 is rebuilt lazily, by the first search after a change.
    lexical = LexicalIndex(store)
    started = time.perf_counter()
    lexical.search("rebase", TOP_K, Principal.local("bench"), None)
    bm25_rebuild_s = time.perf_counter() - started
    return {
        "bytes": source.size,
        "chunks": len(chunks),
        "corpus_chunks": before,
        "upsert_s": upsert_s,
        "delete_s": times,
        "hidden_s": hidden_s,
        "bm25_rebuild_s": bm25_rebuild_s,
        "left": left,
        "count_after": count_after,
    }


# ---------------------------------------------------------------- the parent


ROWS = {
    "a/openvino-bf16": "(a) pipeline, OpenVINO bf16",
    "a/openvino-bf16-perfile": "(a) OpenVINO bf16, each file alone",
    "b": "(b) llama-index naive (torch fp32)",
    "c/fp32": "(c) bare encode, torch fp32",
}
EXPLORE = {
    "a/fp32": "(a) pipeline, torch fp32",
    "a/bf16": "(a) pipeline, torch bf16",
    "c/bf16": "(c) bare encode, torch bf16",
    "a/openvino-fp32": "(a) OpenVINO fp32",
    "a/openvino-bf16-bs64": "(a) OpenVINO bf16, batch_size 64",
    "a/openvino-bf16-fullparse": "(a) OpenVINO bf16, every paragraph classified",
    "a/openvino-bf16-senter": "(a) OpenVINO bf16, spaCy senter in unstructured",
    "a/openvino-bf16-overlap": "(a) OpenVINO bf16, parse ahead in 1 worker",
    "c/onnxruntime-fp32": "(c) bare encode, ONNX Runtime fp32",
    "c/openvino-fp32": "(c) bare encode, OpenVINO fp32",
    "c/openvino-bf16": "(c) bare encode, OpenVINO bf16",
}
BEST = "a/openvino-bf16"


def child(step: str, files: list[Path], work: Path) -> dict[str, Any]:
    """Runs one step in a fresh interpreter, so each row's peak memory is its own."""
    listing = work / "files.json"
    listing.write_text(json.dumps([str(path) for path in files]))
    out = work / f"{step.replace('/', '-')}.json"
    command = [sys.executable, __file__, "--step", step, "--work", str(work)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"step {step} failed (exit {done.returncode})")
    return json.loads(out.read_text())


def in_child(step: str, work: Path) -> None:
    files = [Path(name) for name in json.loads((work / "files.json").read_text())]
    match step:
        case "quality":
            result = run_quality(files, work)
        case "delete":
            result = run_delete(files, work)
        case _:
            result = run_row(step, files, work)
    (work / f"{step.replace('/', '-')}.json").write_text(json.dumps(result))


def print_rows(results: dict[str, dict[str, Any]], labels: dict[str, str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    base = results.get("b")
    columns = (
        "row", "files", "chunks", "tok/chunk", "seconds", "cpu s", "cores", "files/s", "chunks/s",
        "chunks/s ÷ (b)", "files/s ÷ (b)", "chunks/cpu-s ÷ (b)", "embed s", "embed tok/s",
        "store s", "parse+chunk s", "setup s", "peak RSS MiB",
    )  # fmt: skip
    table = Table(*columns, box=box.SIMPLE_HEAD, title="ingest, one run per row")
    for column in table.columns[1:]:
        column.justify = "right"
    for step, result in results.items():
        seconds, embed_s = result["seconds"], result["embed_s"]
        store_s = result.get("store_s")
        chunks_per_s = result["chunks"] / seconds
        files_per_s = result["files"] / seconds
        table.add_row(
            labels[step],
            f"{result['indexed']}/{result['files']}",
            str(result["chunks"]),
            f"{result['tokens'] / max(result['chunks'], 1):.0f}",
            f"{seconds:.1f}",
            f"{result['cpu_s']:.0f}",
            f"{result['cpu_s'] / seconds:.2f}",
            f"{files_per_s:.2f}",
            f"{chunks_per_s:.1f}",
            f"{chunks_per_s / (base['chunks'] / base['seconds']):.2f}" if base else "-",
            f"{files_per_s / (base['files'] / base['seconds']):.2f}" if base else "-",
            f"{(result['chunks'] / result['cpu_s']) / (base['chunks'] / base['cpu_s']):.2f}"
            if base
            else "-",
            f"{embed_s:.1f}",
            f"{result['tokens'] / embed_s:.0f}",
            f"{store_s:.1f}" if store_s is not None else "-",
            f"{seconds - embed_s - store_s:.1f}" if store_s is not None else "-",
            f"{result['startup_s']:.1f}",
            f"{result['peak_rss_mib']:.0f}",
        )
    Console(width=220).print(table)
    print(
        "seconds: first file to last write (model load is 'setup s'); cpu s: CPU time in that "
        "span; cores: cpu s / seconds (under 2 on 2 cores: other work took the rest); "
        "chunks/cpu-s: chunks per CPU second, which other work on a shared machine disturbs "
        "less than chunks/s; tok: the "
        "embedder's word pieces in the texts embedded ((b) includes the file_path metadata "
        "llama-index embeds); embed/store s: inside the embedder and Chroma writes; "
        "parse+chunk s: the rest of (a) (unstructured, chunker, catalog); peak RSS: ru_maxrss "
        "of the row's own process (+ its parse worker)."
    )
    for step, result in results.items():
        for failure in result["failed"]:
            print(f"  {labels[step]} failed: {failure}")
    if base and BEST in results:
        best = results[BEST]
        ratio = (best["chunks"] / best["seconds"]) / (base["chunks"] / base["seconds"])
        print(f"{labels[BEST]}: chunks/s is {ratio:.2f}x (b)'s (the issue's target: 3x or more)")


def print_quality(quality: dict[str, Any]) -> None:
    n = quality["questions"]
    print(
        f"\ncosine of each (a) row's stored embeddings to (c)-fp32's for the same chunks (target: "
        f"mean >= 0.999); its top-{TOP_K} chunks on the {n}-question gold set (Chroma's search "
        f"with that row's query embedder) against the exact fp32 top-{TOP_K} (torch fp32 queries "
        f"over (c)-fp32's vectors):"
    )
    for store_dir, versus in quality["versus_fp32"].items():
        cos = versus["cos"]
        print(
            f"  {store_dir}: mean {cos['mean']:.6f}, min {cos['min']:.6f} over {cos['n']} chunks; "
            f"top-{TOP_K} identical order {versus['same_order']}/{n}, same set "
            f"{versus['same_set']}/{n}; query embeddings cosine min {versus['query_cos_min']:.6f}"
        )
    for name, cos in quality["bare"].items():
        print(f"  {name} (bare encode): mean {cos['mean']:.6f}, min {cos['min']:.6f}")
    for name, hits in quality["hits"].items():
        missed = ", ".join(quality["misses"][name]) or "none"
        print(f"  hit@{TOP_K} {name}: {hits}/{n}   missed: {missed}")


def print_delete(result: dict[str, Any]) -> None:
    def seconds(values: list[float]) -> str:
        return " / ".join(f"{value:.2f}" for value in values)

    times = result["delete_s"]
    worst = max(times["last"] + times["settled"])
    print(
        f"\ndelete: one {result['bytes'] / 2**20:.1f} MB text document, {result['chunks']} chunks "
        f"(paragraphs through our Chunker; random unit vectors upserted with "
        f"ChromaChunkStore.upsert in {seconds(result['upsert_s'])} s, beside the corpus's "
        f"{result['corpus_chunks']} chunks), {DELETE_REPEATS} times in each case:\n"
        f"  hidden from every search after {seconds([s * 1000 for s in result['hidden_s']])} ms\n"
        f"  ChromaChunkStore.delete_document (hide, purge from Chroma by id, drop the chunk "
        f"records, unhide):\n"
        f"    the document last written: {seconds(times['last'])} s\n"
        f"    another's 1,100 chunks written after it: {seconds(times['settled'])} s\n"
        f"  slowest {worst:.2f} s: {'under' if worst < 2 else 'OVER'} the 2 s target; "
        f"{result['left']} of its chunks left, collection back to {result['count_after']}.\n"
        f"  The first BM25 search after it rebuilds the lexical index in "
        f"{result['bm25_rebuild_s']:.2f} s."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--limit", type=int, help="use N files (the gold set's first) for a quick run"
    )
    parser.add_argument(
        "--explore", action="store_true", help="add the speed experiments' rows (slower)"
    )
    parser.add_argument(
        "--add",
        default="",
        help="add some experiments' rows, e.g. a/openvino-bf16-overlap (comma separated)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        in_child(args.step, args.work)
        return

    ensure_corpus(args.corpus)
    files = select_files(args.corpus, args.limit)
    size = sum(path.stat().st_size for path in files) / 2**20
    rows = dict(ROWS)
    if args.explore:
        rows |= EXPLORE
    for step in filter(None, args.add.split(",")):
        if step not in EXPLORE:
            parser.error(f"--add: no experiment {step!r}; one of {', '.join(EXPLORE)}")
        rows[step] = EXPLORE[step]
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    print(
        f"corpus: {len(files)} .txt files, {size:.1f} MB, from {args.corpus}; "
        f"work folder {work}; each row in a fresh process",
        flush=True,
    )
    from appliance.components.embedding import resolve
    from appliance.settings.settings import EmbeddingSettings

    auto = resolve(EmbeddingSettings())
    print(
        f"embedding auto on this CPU: {auto.backend} {auto.precision} (bf16 rows fall back to "
        "fp32 inside OpenVINO where the CPU lacks native bf16)",
        flush=True,
    )
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    try:
        for step, label in rows.items():
            print(f"  {label} ...", end=" ", flush=True)
            load = os.getloadavg()[0]
            results[step] = child(step, files, work)
            print(
                f"{results[step]['seconds']:.1f} s (1-minute load {load:.1f} before, "
                f"{os.getloadavg()[0]:.1f} after)",
                flush=True,
            )
        print()
        print_rows(results, rows)
        print("\n  agreement and retrieval ...", flush=True)
        print_quality(child("quality", files, work))
        print(f"\n  deleting a {DELETE_MB} MB document ...", flush=True)
        print_delete(child("delete", files, work))
        print(f"\nbench took {time.perf_counter() - started:.0f} s")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
