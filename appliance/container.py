"""Builds the appliance's components from settings once, and hands them to the API and CLI."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from llama_index.core.llms import LLM

from appliance.answering.answer_service import EXTRACTIVE, AnswerService
from appliance.answering.extractive import SentenceExtractor
from appliance.answering.query_audit import query_payload
from appliance.auth.principal import Principal, acting
from appliance.components.embedding import Embedder, build_embedder
from appliance.components.llm import build_llm
from appliance.components.vector_store import build_chunk_store
from appliance.components.vector_store.chroma import ChromaChunkStore
from appliance.domain import Answer
from appliance.observability.logs import request_id
from appliance.retrieval import build_retriever
from appliance.settings import Settings

if TYPE_CHECKING:
    from appliance.audit.log import AuditLog
    from appliance.auth.failures import FailedAuthLimiter
    from appliance.auth.keys import KeyStore
    from appliance.auth.usage_limits import UsageLimiter
    from appliance.connectors.cohere import CohereConnector


# Read once per version folder: a version's files never change (the manifest checks them).
# A folder not prepared yet is looked at again next time.
_PARAMETERS: dict[Path, int] = {}
_SYSTEM_ROLE: dict[Path, bool] = {}  # the same, for whether its chat template takes one


def _parameters(folder: Path) -> int | None:
    from models.size import parameter_count

    if folder not in _PARAMETERS:
        count = parameter_count(folder)
        if count is None:
            return None
        _PARAMETERS[folder] = count
    return _PARAMETERS[folder]


class Components:
    """Lazy: `appliance search` never loads an LLM client, `models stop` loads nothing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def embedder(self) -> Embedder:
        return build_embedder(self.settings.embedding)

    @cached_property
    def chunk_store(self) -> ChromaChunkStore:
        return build_chunk_store(self.settings)

    @cached_property
    def llm(self) -> LLM:
        return build_llm(self.settings.llm)

    @cached_property
    def audit(self) -> AuditLog:
        from appliance.audit.log import AuditLog

        return AuditLog.for_settings(self.settings)

    @cached_property
    def keys(self) -> KeyStore:
        from appliance.auth.keys import KeyStore

        return KeyStore.for_settings(self.settings)

    @cached_property
    def usage(self) -> UsageLimiter:
        from appliance.auth.usage_limits import UsageLimiter

        return UsageLimiter(self.settings.limits)

    @cached_property
    def auth_failures(self) -> FailedAuthLimiter:
        from appliance.auth.failures import FailedAuthLimiter

        return FailedAuthLimiter(self.settings.auth.failed_per_minute)

    @property
    def model_digest(self) -> str:
        """The answering model version's manifest hash, recorded with every answer. Read each
        time: `appliance models activate` may switch versions under a running API."""
        from models.inference_server import InferenceServer
        from models.manifest import Manifest
        from models.registry import ModelRegistry

        settings = self.settings
        inference = settings.inference
        # The version this node's vLLM loaded, if it runs here: during an activation's gate that
        # is the candidate, not yet the registry's active one. Otherwise the registry's.
        running = InferenceServer(
            inference.python, inference.host, inference.port, settings.run_dir, settings.logs_dir
        ).version()
        models_dir = settings.models_dir
        version = running or ModelRegistry(models_dir).active(settings.llm.model)
        entry = Manifest(models_dir).entries().get(version)
        return entry.digest() if entry else "unknown: not in this node's model manifest"

    @cached_property
    def answers(self) -> AnswerService:
        # Imported here, not at the top: `appliance worker` chooses prometheus_client's
        # multiprocess mode before anything imports it (appliance/observability/worker_metrics).
        from appliance.observability.metrics import MeteredLLM, MeteredRetriever

        retrieval = self.settings.retrieval
        retriever = MeteredRetriever(
            build_retriever(retrieval, self.chunk_store, self.embedder), retrieval.mode
        )
        # Metered: time to first token and decoding speed go to /metrics.
        llm = cast(LLM, MeteredLLM(self.llm))
        return AnswerService(
            self.settings,
            retriever,
            llm,
            SentenceExtractor(self.embedder),
            self._record_answer,
            self.cohere,
            self.model_parameters_b,
            self.model_takes_system_role,
        )

    def _active_model_dir(self) -> Path | None:
        from models.registry import ModelRegistry

        models_dir = self.settings.models_dir
        version = ModelRegistry(models_dir).active(self.settings.llm.model)
        return models_dir / version if version else None

    def model_takes_system_role(self) -> bool:
        """llm.system_role, with auto read from the active version's chat template (a model
        served from elsewhere, or without a template, gets a system message)."""
        choice = self.settings.llm.system_role
        if choice != "auto":
            return choice == "system"
        folder = self._active_model_dir()
        if folder is None:
            return True
        if folder not in _SYSTEM_ROLE:
            from models.chat_template import accepts_system_role

            _SYSTEM_ROLE[folder] = accepts_system_role(folder) is not False
        return _SYSTEM_ROLE[folder]

    def model_parameters_b(self) -> float | None:
        """The served model's size in billions of parameters: from settings, else from the
        active version's config.json on this node; None when neither tells."""
        if self.settings.llm.parameters_b is not None:
            return self.settings.llm.parameters_b
        folder = self._active_model_dir()
        count = _parameters(folder) if folder else None
        return count / 1e9 if count else None

    @cached_property
    def cohere(self) -> CohereConnector | None:
        """None unless an admin enabled it; then every call it makes is audited."""
        from appliance.connectors.cohere import build_cohere_connector

        return build_cohere_connector(self.settings.connectors.cohere, self.record_egress)

    def record_egress(self, payload: dict[str, Any]) -> None:
        principal = acting.get()
        actor = principal.user if principal else "system"
        groups = principal.audit_groups() if principal else []
        self.audit.append("egress", actor, groups, payload)

    def _record_answer(
        self, principal: Principal, collections: list[str] | None, answer: Answer
    ) -> None:
        # The id the API gave the request (and sent on to vLLM) links this record to the logs.
        digest = "" if answer.model == EXTRACTIVE else self.model_digest
        payload = query_payload(answer, collections, digest)
        payload["request_id"] = request_id.get()
        self.audit.append("query", principal.user, principal.audit_groups(), payload)
        self.usage.spent(principal, answer.generated_tokens)
