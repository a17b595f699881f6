"""The LLM client (a llama-index LLM), chosen by `llm.mode`."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from appliance.settings import LLMSettings


def build_llm(settings: LLMSettings) -> LLM:
    """One client, or a pool over several servers when llm.base_urls names more."""
    urls = settings.urls
    if len(urls) == 1:
        return _one(settings)
    from appliance.components.llm.pool import Backend, PooledLLM

    backends = [Backend(url, _one(settings.model_copy(update={"base_url": url}))) for url in urls]
    return cast("LLM", PooledLLM(backends, settings.failover_cooldown_s))


def _one(settings: LLMSettings) -> LLM:
    match settings.mode:
        case "openai_like":
            from appliance.components.llm.openai_like import build_openai_like

            return build_openai_like(settings)
    raise ValueError(f"unknown llm mode {settings.mode!r}")
