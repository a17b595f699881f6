"""Whether a model's chat template takes a system message.

Mistral-7B-Instruct v0.1 and v0.2 templates raise "Conversation roles must alternate
user/assistant..." on a system message: vLLM answers 400, and every answer would fall back to
quotes. Such a model gets the system text at the top of the user message instead
(appliance/answering/prompt.py). Read by rendering the template, as vLLM would, in a sandbox.
"""

from __future__ import annotations

import json
from pathlib import Path

_PROBE = "APPLIANCE-SYSTEM-PROBE"


def chat_template(folder: Path) -> str | None:
    """The model folder's chat template: chat_template.jinja, else tokenizer_config.json's."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {item.get("name"): item.get("template") for item in template}
        template = named.get("default")
    return template if isinstance(template, str) else None


def accepts_system_role(folder: Path) -> bool | None:
    """True when the template renders a system message's text; None when there is none."""
    template = chat_template(folder)
    if template is None:
        return None
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    messages = [{"role": "system", "content": _PROBE}, {"role": "user", "content": "Hello"}]
    try:
        rendered = environment.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token="", eos_token=""
        )
    except TemplateError:
        return False
    # A template may also drop a system message without a word.
    return _PROBE in rendered
