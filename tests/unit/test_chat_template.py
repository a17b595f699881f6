"""Mistral-7B-Instruct v0.1/v0.2's chat template refuses a system message; SmolLM2's takes one.
The instructions go where the served model's template accepts them (issue 16, item 7)."""

from __future__ import annotations

import json
from pathlib import Path

from llama_index.core.base.llms.types import MessageRole

from appliance.answering.prompt import SYSTEM, build_messages
from appliance.domain import Hit
from models.chat_template import accepts_system_role
from tests.conftest import ROOT

# The template of mistralai/Mistral-7B-Instruct-v0.2's tokenizer_config.json, as published.
MISTRAL_V02 = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)
# One that takes the conversation but silently leaves a system message out.
DROPS_SYSTEM = (
    "{% for message in messages %}{% if message['role'] == 'user' %}[INST] "
    "{{ message['content'] }} [/INST]{% endif %}{% endfor %}"
)


def _model(tmp_path: Path, template: str, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return folder


def test_each_template_is_read_for_what_it_does_with_a_system_message(tmp_path: Path) -> None:
    assert accepts_system_role(_model(tmp_path, MISTRAL_V02, "mistral-v02")) is False
    assert accepts_system_role(_model(tmp_path, DROPS_SYSTEM, "drops")) is False
    smollm2 = ROOT / ".cache" / "test-models" / "smollm2-135m-instruct"
    if not smollm2.is_dir():  # prepared by the e2e fixture; the same template, inline
        smollm2 = _model(
            tmp_path,
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
            "message['content'] + '<|im_end|>\\n'}}{% endfor %}",
            "smollm2",
        )
    assert accepts_system_role(smollm2) is True
    assert accepts_system_role(tmp_path) is None  # no template at all


def test_without_a_system_role_the_instructions_open_the_user_message() -> None:
    hit = Hit("c", "d", "v", "/docs/vpn.txt", None, None, 0.9, "Sessions last 11 hours.")
    with_system = build_messages("How long?", [hit])
    assert [message.role for message in with_system] == [MessageRole.SYSTEM, MessageRole.USER]
    [folded] = build_messages("How long?", [hit], system_role=False)
    assert folded.role == MessageRole.USER
    assert folded.content.startswith(SYSTEM)
    assert folded.content.endswith(with_system[1].content)
