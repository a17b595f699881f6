"""bf16 embeddings agree with fp32 ones and stay unit-length float vectors."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.components.embedding import Embedder, build_embedder
from appliance.settings.settings import EmbeddingSettings

SENTENCES = [
    "git rebase replays your commits on top of another branch.",
    "A VPN session expires after eleven hours and must be renewed.",
    "Use git bisect to find the commit that introduced a bug by binary search.",
    "The hotel cap for business travel in London is 180 pounds per night.",
    "git stash saves your local modifications away and reverts the working directory.",
    "Incident bridge: dial extension 4411 and state your name and team.",
    # A long passage, so the bf16 error accumulates over a full window of word pieces.
    " ".join(["Merging combines the histories of two branches into a new commit."] * 30),
]


@pytest.fixture(scope="module")
def fp32_embedder() -> Embedder:
    return build_embedder(EmbeddingSettings(backend="torch", precision="fp32"))


@pytest.fixture(scope="module")
def bf16_embedder() -> Embedder:
    return build_embedder(EmbeddingSettings(backend="torch", precision="bf16"))


def test_bf16_embeddings_match_fp32_ones(fp32_embedder: Embedder, bf16_embedder: Embedder) -> None:
    embedder = fp32_embedder
    fp32 = np.array(embedder.embed_documents(SENTENCES))
    bf16 = np.array(bf16_embedder.embed_documents(SENTENCES))
    assert bf16.shape == fp32.shape == (len(SENTENCES), embedder.dimension)
    cosines = (fp32 * bf16).sum(axis=1) / (
        np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1)
    )
    assert cosines.min() >= 0.999
    # Equal to the last bit would mean the setting was ignored and fp32 ran both times.
    assert not np.array_equal(fp32, bf16)


def test_bf16_embeddings_are_unit_length_floats(bf16_embedder: Embedder) -> None:
    vectors = bf16_embedder.embed_documents(SENTENCES)
    assert all(isinstance(value, float) for vector in vectors for value in vector)
    norms = np.linalg.norm(np.array(vectors, dtype=np.float64), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)


def test_bf16_query_ranks_the_matching_sentence_first(bf16_embedder: Embedder) -> None:
    query = np.array(bf16_embedder.embed_query("How do I find which commit broke the build?"))
    scores = np.array(bf16_embedder.embed_documents(SENTENCES)) @ query
    assert SENTENCES[int(scores.argmax())].startswith("Use git bisect")
