"""vLLM (or any OpenAI-compatible server inside the building) through llama-index's OpenAILike."""

from __future__ import annotations

from typing import Any

import httpx
from llama_index.llms.openai_like import OpenAILike

from appliance.errors import InferenceUnavailable
from appliance.observability.logs import request_id
from appliance.settings.settings import LLMSettings


def _timeout(settings: LLMSettings) -> httpx.Timeout:
    # A short connect timeout makes a dead inference service a quick 503, not a long hang.
    return httpx.Timeout(settings.request_timeout_s, connect=settings.connect_timeout_s)


def _send_request_id(request: httpx.Request) -> None:
    # vLLM names its request after X-Request-Id, so its logs carry the API's id.
    current = request_id.get()
    if current:
        request.headers["X-Request-Id"] = current


def sampling_kwargs(settings: LLMSettings) -> dict[str, Any]:
    """Sampling settings beyond the OpenAI basics, in the request body vLLM reads them from."""
    extra: dict[str, Any] = {}
    if settings.frequency_penalty:
        extra["frequency_penalty"] = settings.frequency_penalty
    if settings.repetition_penalty != 1.0:
        # Not an OpenAI parameter: the SDK sends extra_body's keys as they are.
        extra["extra_body"] = {"repetition_penalty": settings.repetition_penalty}
    return extra


def build_openai_like(settings: LLMSettings) -> OpenAILike:
    return OpenAILike(
        model=settings.model,
        api_base=settings.base_url,
        api_key=settings.api_key,
        is_chat_model=True,
        context_window=settings.context_window,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        timeout=settings.request_timeout_s,
        max_retries=0,
        additional_kwargs=sampling_kwargs(settings),
        http_client=httpx.Client(
            timeout=_timeout(settings), event_hooks={"request": [_send_request_id]}
        ),
    )


def served_models(settings: LLMSettings) -> list[str]:
    """The model names the inference service serves; raises InferenceUnavailable if it is down."""
    url = settings.base_url.rstrip("/") + "/models"
    try:
        response = httpx.get(
            url,
            headers={"Authorization": f"Bearer {settings.api_key}"},
            timeout=_timeout(settings),
        )
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise InferenceUnavailable(
            f"the inference service at {settings.base_url} is not answering ({error}); "
            "start it with `appliance models serve`"
        ) from error
    return [entry["id"] for entry in response.json().get("data", [])]
