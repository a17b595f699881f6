"""Which way a question is answered: the model writes it, or the passages are quoted."""

from __future__ import annotations

from typing import Literal

from appliance.settings.settings import AnsweringSettings

AnswerMode = Literal["generate", "extract"]


def answer_mode(settings: AnsweringSettings, parameters_b: float | None) -> AnswerMode:
    """`answering.mode`, with `auto` decided by the served model's size (None: unknown, so the
    model answers and its claims are checked)."""
    if settings.mode != "auto":
        return settings.mode
    if parameters_b is not None and parameters_b < settings.generate_min_parameters_b:
        return "extract"
    return "generate"
