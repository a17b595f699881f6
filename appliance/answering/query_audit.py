"""The audit record of one answered question: enough to replay what was retrieved and said."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.domain import Answer, Hit


def retrieved(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The passages an answer or a search read, numbered as shown, as the audit keeps them."""
    return [
        {
            "number": number,
            "chunk_id": hit.chunk_id,
            "doc_id": hit.doc_id,
            "version": hit.version,
            "score": hit.score,
        }
        for number, hit in enumerate(hits, 1)
    ]


def query_payload(
    answer: Answer,
    collections: list[str] | None,
    model_digest: str,
) -> dict[str, Any]:
    return {
        "question": answer.question,
        "collections": collections,
        "retrieved": retrieved([citation.hit for citation in answer.citations]),
        "model": answer.model,
        "model_manifest_sha256": model_digest,
        "prompt_version": answer.prompt_version,
        "answer": answer.text,
        "citations": [citation.number for citation in answer.citations if citation.cited],
        # Cited sources whose sentences share too few words with them (answering.citation_check).
        "unsupported_citations": [
            citation.number for citation in answer.citations if citation.supported is False
        ],
        "abstained": answer.abstained,
        "notice": answer.notice,
        # generate or extract; the model's claims no passage contains, and what was done.
        "answer_mode": answer.mode,
        "unsupported_claims": [claim["text"] for claim in answer.unsupported_claims],
        "claim_check": answer.claim_check,
        "replaced": answer.replaced,
        "generated_tokens": answer.generated_tokens,
        "seconds_to_first_token": answer.seconds_to_first_token,
        "seconds_total": round(answer.seconds_total, 4),
        "left_building": answer.left_building,
    }
