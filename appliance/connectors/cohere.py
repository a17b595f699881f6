"""Cohere's cloud for reranking and generation: off unless enabled, for allowed collections."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from appliance.errors import ConnectorUnavailable, EgressDenied
from appliance.settings.loader import SettingsError
from appliance.settings.settings import CohereSettings

CallListener = Callable[[dict[str, Any]], None]
Purpose = Literal["rerank", "generate"]
T = TypeVar("T")


def build_cohere_connector(
    settings: CohereSettings, on_call: CallListener | None = None
) -> CohereConnector | None:
    """None unless an admin enabled the connector, so the `cohere` SDK is not even imported."""
    return CohereConnector(settings, on_call) if settings.enabled else None


class CohereConnector:
    """Calls Cohere's v2 API for questions whose every collection may leave this machine.

    The caller decides with `may_send` first; `rerank` and `generate` check again and refuse with
    EgressDenied, so a routing mistake upstream still sends nothing. `on_call` receives what was
    sent (endpoint, model, question or prompt, chunk ids, bytes, collections) after every call
    that was attempted, whatever its outcome, for the audit log.
    """

    def __init__(self, settings: CohereSettings, on_call: CallListener | None = None) -> None:
        if not settings.enabled:
            raise EgressDenied(
                "The Cohere connector is off (connectors.cohere.enabled is false); "
                "nothing is sent to Cohere."
            )
        # Imported here only: the appliance's core never loads the SDK unless it is enabled.
        import cohere
        import httpx
        from cohere.core.api_error import ApiError

        self.settings = settings
        self._on_call = on_call
        self._allowed = frozenset(settings.allowed_collections)
        self._failures: tuple[type[Exception], ...] = (ApiError, httpx.HTTPError)
        self._client = cohere.ClientV2(
            api_key=_read_api_key(settings),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            # A retry would send the same data again while the audit log records one call.
            max_retries=0,
        )

    def uses(self, purpose: Purpose) -> bool:
        return purpose in self.settings.use_for

    def may_send(self, collections: set[str]) -> bool:
        """True only if every collection the question covers may leave; an empty set may not,
        since it means the caller does not know which collections are involved."""
        return self.settings.enabled and bool(collections) and collections <= self._allowed

    def rerank(
        self,
        question: str,
        passages: list[tuple[str, str]],
        top_n: int,
        *,
        collections: set[str],
    ) -> list[tuple[str, float]]:
        """(chunk_id, relevance score) of the best `top_n` passages, best first."""
        self._refuse_unless_allowed("rerank", collections)
        if not passages:
            return []
        chunk_ids = [chunk_id for chunk_id, _ in passages]
        texts = [text for _, text in passages]
        top_n = min(top_n, len(passages))
        model = self.settings.rerank_model
        sent = {
            "endpoint": "/v2/rerank",
            "model": model,
            "question": question,
            "chunk_ids": chunk_ids,
            "top_n": top_n,
            "bytes": _size(question, *texts),
        }
        response = self._send(
            sent,
            collections,
            lambda: self._client.rerank(model=model, query=question, documents=texts, top_n=top_n),
        )
        return [(chunk_ids[item.index], float(item.relevance_score)) for item in response.results]

    def generate(self, prompt: str, *, collections: set[str], chunk_ids: Sequence[str] = ()) -> str:
        """Cohere's answer to `prompt`; `chunk_ids` names the passages the prompt carries."""
        self._refuse_unless_allowed("generate", collections)
        model = self.settings.chat_model
        sent = {
            "endpoint": "/v2/chat",
            "model": model,
            "prompt": prompt,
            "chunk_ids": list(chunk_ids),
            "bytes": _size(prompt),
        }
        messages: Any = [{"role": "user", "content": prompt}]
        response = self._send(
            sent, collections, lambda: self._client.chat(model=model, messages=messages)
        )
        parts = response.message.content or []
        return "".join(part.text for part in parts if part.type == "text")

    def _refuse_unless_allowed(self, purpose: Purpose, collections: set[str]) -> None:
        if not self.uses(purpose):
            raise EgressDenied(
                f"Cohere is not enabled for {purpose} (connectors.cohere.use_for); "
                "nothing was sent to it."
            )
        if not self.may_send(collections):
            kept = ", ".join(sorted(collections - self._allowed)) or "none named"
            raise EgressDenied(
                f"This question covers collections that may not leave this machine ({kept}); "
                "nothing was sent to Cohere."
            )

    def _send(self, sent: dict[str, Any], collections: set[str], call: Callable[[], T]) -> T:
        started = time.perf_counter()
        outcome = "ok"
        try:
            return call()
        except EgressDenied:
            outcome = "refused by the egress guard"
            raise
        except self._failures as error:
            outcome = f"failed: {type(error).__name__}"
            raise ConnectorUnavailable(
                f"Cohere did not answer ({sent['endpoint']} at {self.settings.base_url}: "
                f"{error}); try again later."
            ) from error
        finally:
            if self._on_call is not None:
                self._on_call(
                    {
                        **sent,
                        "destination": self.settings.base_url,
                        "collections": sorted(collections),
                        "outcome": outcome,
                        "seconds": round(time.perf_counter() - started, 3),
                    }
                )


def _read_api_key(settings: CohereSettings) -> str:
    path = settings.api_key_file
    try:
        key = path.read_text(encoding="utf-8").strip() if path else ""
    except OSError as error:
        raise SettingsError(
            f"connectors.cohere.api_key_file {path} cannot be read: {error.strerror}"
        ) from error
    if not key:
        raise SettingsError(f"connectors.cohere.api_key_file {path} holds no API key")
    return key


def _size(*texts: str) -> int:
    return sum(len(text.encode("utf-8")) for text in texts)
