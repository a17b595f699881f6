"""The sentence-transformers model run by OpenVINO's CPU runtime, exported to ONNX as it loads."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch

from appliance.components.embedding.sentence_transformers import SentenceTransformerEmbedder
from appliance.egress.hook import decline_openvino_telemetry
from appliance.settings.settings import EmbeddingSettings

_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
_EXAMPLE = ["an example", "a slightly longer example sentence"]


class _SentenceEmbedding(torch.nn.Module):
    """The loaded modules end to end (transformer, pooling, normalize), with tensors for inputs."""

    def __init__(self, model: torch.nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.input_names, tensors, strict=True)))["sentence_embedding"]


class OpenVINOEmbedder(SentenceTransformerEmbedder):
    """The torch embedder's weights, tokenizer and pooling; OpenVINO runs the forward pass.

    The model is exported in memory from the modules sentence-transformers loaded (about 1.5 s),
    so the graph is always the installed weights and nothing is downloaded or written. It goes
    through ONNX and `Core.read_model` rather than `openvino.convert_model`, because the converter
    sends usage telemetry unless the user opted out, and nothing leaves the appliance.
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        # Entry points have declined already; a script that builds the embedder directly must too.
        decline_openvino_telemetry()
        import openvino

        if settings.device != "cpu":
            raise ValueError(
                f"embedding.backend openvino runs on the CPU; embedding.device is "
                f"{settings.device!r} (use backend torch for other devices)"
            )
        super().__init__(settings)
        self._input_names = list(self._tokenizer(_EXAMPLE[0]).keys())
        core = openvino.Core()
        self._graph = core.compile_model(
            core.read_model(self._export_onnx()),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": _PRECISION_HINTS[settings.precision],
                # One batch at a time on all cores: ingest embeds one document's chunks per call.
                "PERFORMANCE_HINT": "LATENCY",
            },
        )

    def _export_onnx(self) -> bytes:
        example = self._tokenizer(_EXAMPLE, padding=True, return_tensors="pt")
        buffer = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter's deprecation notice and tracing remarks about shapes.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _SentenceEmbedding(self._model, self._input_names).eval(),
                tuple(example[name] for name in self._input_names),
                buffer,
                input_names=self._input_names,
                output_names=["sentence_embedding"],
                dynamic_axes={
                    **{name: {0: "batch", 1: "sequence"} for name in self._input_names},
                    "sentence_embedding": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
        return buffer.getvalue()

    def _encode(self, texts: list[str]) -> np.ndarray:
        # Longest first, as sentence-transformers does, so each batch pads to similar lengths.
        order = np.argsort([-len(text) for text in texts], kind="stable")
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        # A request per call: one request is not safe to share between threads (API and ingest).
        request = self._graph.create_infer_request()
        size = self._settings.batch_size
        for start in range(0, len(texts), size):
            batch = order[start : start + size]
            encoded = self._tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self._model.max_seq_length,
                return_tensors="np",
            )
            outputs = request.infer({name: encoded[name] for name in self._input_names})
            vectors[batch] = outputs[0]
        return vectors
