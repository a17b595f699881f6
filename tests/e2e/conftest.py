"""The e2e tests use the one session vLLM that tests/conftest.py provides (tests/inference.py)."""

from tests.inference import MODELS_CACHE, Inference

__all__ = ["MODELS_CACHE", "Inference"]
