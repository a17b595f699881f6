"""The OpenVINO backend gives the torch embedder's vectors, offline, at either precision."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from appliance.components.embedding import Embedder, build_embedder, resolve
from appliance.settings.settings import EmbeddingSettings
from tests.unit.test_embedding_precision import SENTENCES


@pytest.fixture(scope="module")
def torch_fp32() -> Embedder:
    return build_embedder(EmbeddingSettings(backend="torch", precision="fp32"))


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def openvino_embedder(request: pytest.FixtureRequest) -> Embedder:
    return build_embedder(EmbeddingSettings(backend="openvino", precision=request.param))


def test_openvino_embeddings_match_torch_fp32(
    torch_fp32: Embedder, openvino_embedder: Embedder
) -> None:
    reference = np.array(torch_fp32.embed_documents(SENTENCES))
    vectors = np.array(openvino_embedder.embed_documents(SENTENCES))
    assert vectors.shape == reference.shape
    assert (vectors * reference).sum(axis=1).min() >= 0.999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert all(isinstance(value, float) for vector in vectors.tolist() for value in vector)


def test_openvino_counts_word_pieces_as_torch_does(
    torch_fp32: Embedder, openvino_embedder: Embedder
) -> None:
    for sentence in SENTENCES:
        assert openvino_embedder.count_tokens(sentence) == torch_fp32.count_tokens(sentence)


def test_openvino_query_ranks_the_matching_sentence_first(openvino_embedder: Embedder) -> None:
    query = np.array(openvino_embedder.embed_query("How do I find which commit broke the build?"))
    scores = np.array(openvino_embedder.embed_documents(SENTENCES)) @ query
    assert SENTENCES[int(scores.argmax())].startswith("Use git bisect")


def test_openvino_loads_and_embeds_with_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    embedder = build_embedder(EmbeddingSettings(backend="openvino", precision="bf16"))
    assert len(embedder.embed_query("offline")) == embedder.dimension
    assert attempts == []


def test_openvino_refuses_a_device_other_than_cpu() -> None:
    with pytest.raises(ValueError, match="runs on the CPU"):
        build_embedder(EmbeddingSettings(backend="openvino", device="cuda"))


def test_auto_picks_openvino_bf16_only_where_the_cpu_computes_bf16() -> None:
    auto = EmbeddingSettings(backend="auto", precision="auto")
    native = resolve(auto, frozenset({"avx512f", "avx512_bf16"}), openvino_installed=True)
    assert (native.backend, native.precision) == ("openvino", "bf16")
    amx = resolve(auto, frozenset({"amx_bf16"}), openvino_installed=True)
    assert amx.precision == "bf16"
    plain = resolve(auto, frozenset({"avx2", "avx512f"}), openvino_installed=True)
    assert (plain.backend, plain.precision) == ("openvino", "fp32")
    bare = resolve(auto, frozenset({"avx512_bf16"}), openvino_installed=False)
    assert (bare.backend, bare.precision) == ("torch", "bf16")
    gpu = resolve(auto.model_copy(update={"device": "cuda"}), frozenset({"avx512_bf16"}), True)
    assert (gpu.backend, gpu.precision) == ("torch", "fp32")


def test_auto_leaves_explicit_choices_alone() -> None:
    chosen = EmbeddingSettings(backend="torch", precision="fp32")
    assert resolve(chosen, frozenset({"avx512_bf16"}), openvino_installed=True) == chosen


def test_a_question_asked_again_is_embedded_once(
    torch_fp32: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    embed = torch_fp32.embed_documents

    def counted(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return embed(texts)

    monkeypatch.setattr(torch_fp32, "embed_documents", counted)
    first = torch_fp32.embed_query("Which port does the build cache listen on?")
    first.append(0.0)  # a caller's change to its copy does not reach the cache
    again = torch_fp32.embed_query("Which port does the build cache listen on?")
    other = torch_fp32.embed_query("Who approves a release?")
    assert calls == [["Which port does the build cache listen on?"], ["Who approves a release?"]]
    assert len(again) == len(other) == torch_fp32.dimension
    assert np.allclose(again, embed(["Which port does the build cache listen on?"])[0])
