"""The LLM client (a llama-index LLM), chosen by `llm.mode`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from appliance.settings import LLMSettings


def build_llm(settings: LLMSettings) -> LLM:
    match settings.mode:
        case "openai_like":
            from appliance.components.llm.openai_like import build_openai_like

            return build_openai_like(settings)
    raise ValueError(f"unknown llm mode {settings.mode!r}")
