"""A model's size in parameters, read from its config.json (no weights are loaded).

`answering.mode: auto` lets a model write answers only from a size up: measured here, the 135M
CPU model invents numbers next to correct sources, while a 7B one mostly quotes them.
"""

from __future__ import annotations

import json
from pathlib import Path


def parameter_count(folder: Path) -> int | None:
    """Parameters of a decoder-only transformer (Llama, Mistral, Qwen shapes), or None when
    its config.json is missing or names no such shape."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    config = config.get("text_config", config)
    try:
        hidden = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        intermediate = int(config["intermediate_size"])
        vocab = int(config["vocab_size"])
        heads = int(config["num_attention_heads"])
    except (KeyError, TypeError, ValueError):
        return None
    head_dim = int(config.get("head_dim") or hidden // heads)
    kv_heads = int(config.get("num_key_value_heads") or heads)
    attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim
    mlp = 3 * hidden * intermediate
    per_layer = attention + mlp + 2 * hidden
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return layers * per_layer + embeddings + hidden
