"""GGUF to a Hugging Face folder vLLM can load (vLLM 0.32 has no GGUF loader)."""

from __future__ import annotations

import os
from pathlib import Path


def gguf_to_hf(gguf_file: Path, out_dir: Path, dtype: str = "bfloat16") -> None:
    """Dequantizes the GGUF weights into a safetensors folder with its tokenizer."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True), dtype=dtype
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
