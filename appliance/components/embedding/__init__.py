"""The embedder: one implementation per file, chosen by `embedding.backend`."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from appliance.settings import EmbeddingSettings

log = logging.getLogger(__name__)

# CPU features under which bf16 matmuls run natively (AVX-512 BF16, Intel AMX). Without them
# bf16 is emulated and slower than fp32.
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


class Embedder(Protocol):
    name: str
    dimension: int

    def count_tokens(self, text: str) -> int: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def resolve(
    settings: EmbeddingSettings,
    flags: frozenset[str] | None = None,
    openvino_installed: bool | None = None,
) -> EmbeddingSettings:
    """`auto` backend and precision made concrete for this machine, decided once at load.

    On a CPU: OpenVINO when it is installed (about 1.8x torch at either precision), bf16 when
    the CPU computes it natively (about 2x fp32, cosine to fp32 above 0.9999: bench/ingest.py).
    Elsewhere, or lacking those: torch, fp32.
    """
    on_cpu = settings.device == "cpu"
    backend, precision = settings.backend, settings.precision
    if backend == "auto":
        if openvino_installed is None:
            openvino_installed = importlib.util.find_spec("openvino") is not None
        backend = "openvino" if on_cpu and openvino_installed else "torch"
    if precision == "auto":
        native = bool(_BF16_FLAGS & (cpu_flags() if flags is None else flags))
        precision = "bf16" if on_cpu and native else "fp32"
    return settings.model_copy(update={"backend": backend, "precision": precision})


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    if settings.backend == "auto" or settings.precision == "auto":
        settings = resolve(settings)
        log.info("embedding: %s at %s", settings.backend, settings.precision)
    if settings.mode != "sentence_transformers":
        raise ValueError(f"unknown embedding mode {settings.mode!r}")
    # The optional runtime is imported only when it is chosen.
    match settings.backend:
        case "torch":
            from appliance.components.embedding.sentence_transformers import (
                SentenceTransformerEmbedder,
            )

            return SentenceTransformerEmbedder(settings)
        case "openvino":
            from appliance.components.embedding.openvino import OpenVINOEmbedder

            return OpenVINOEmbedder(settings)
    raise ValueError(f"unknown embedding backend {settings.backend!r}")
