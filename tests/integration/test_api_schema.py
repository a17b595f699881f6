"""Schemathesis generates requests from the API's own OpenAPI schema: no input gives a 500.

A reader's key goes to every operation (admin-only ones must answer 403, not crash); admin and
auditor keys go to the operations that only read or manage keys. Uploads and source syncs are
left out: with generated paths they would ingest whatever folder the generator names.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from appliance.container import Components
from appliance.server.app import create_app
from tests.conftest import free_port, settings_for

EXAMPLES_PER_OPERATION = 12
SKIPPED = {
    ("POST", "/v1/documents"),
    ("POST", "/v1/sources"),
    ("POST", "/v1/sources/{source_id}/sync"),
}


def test_no_generated_request_makes_the_api_fail_with_a_500(tmp_path: Path, embedder) -> None:
    # Nothing listens on the inference port: /v1/query and chat must answer 503, never 500.
    app_settings = settings_for(
        tmp_path / "data", APPLIANCE_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1"
    )
    components = Components(app_settings)
    components.embedder = embedder
    keys = {
        role: components.keys.create(f"fuzz-{role}", role, ["everyone"], "tests")[1]
        for role in ("reader", "admin", "auditor")
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings, components))
    failures: list[str] = []
    tried: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        read_only = operation.method.upper() == "GET" or operation.path.startswith("/v1/keys")
        roles = ("reader", "admin", "auditor") if read_only else ("reader",)
        tried.append(f"{operation.method.upper()} {operation.path}")

        fuzz(operation, roles, keys, failures)
    assert len(tried) >= 15, tried
    assert failures == []


def fuzz(operation, roles: tuple[str, ...], keys: dict[str, str], failures: list[str]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case) -> None:
        for role in roles:
            response = case.call(headers={"Authorization": f"Bearer {keys[role]}"})
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(
                    f"{role} {case.method} {case.formatted_path}: {response.status_code} "
                    f"{response.text[:300]}"
                )

    check()


def test_the_schema_names_the_key_schemes(settings) -> None:
    schemes = create_app(settings).openapi()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)
