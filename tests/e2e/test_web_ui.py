"""The web page in headless Chromium against the real API and a real vLLM.

A reader asks, watches the answer stream, opens citation 1 in its document and rates the answer;
an auditor finds that rating in the audit search; an admin sees the source and its job.
Screenshots of each step are saved under test-artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from appliance.container import Components
from appliance.server.app import create_app
from ingest.service import document_id
from tests.conftest import CORPUS, ROOT, free_port, settings_for
from tests.e2e.conftest import Inference

pytestmark = pytest.mark.e2e

QUESTION = "What telephone extension is the incident bridge on?"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 180_000


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it with apt)")
    return found


@pytest.fixture
def server(inference: Inference, tmp_path: Path, embedder) -> Iterator[tuple[str, Components]]:
    """The API served by uvicorn on a free port, as `appliance serve` runs it."""
    # The admin registers tmp_path/corpus from the web page: allowed under tmp_path only.
    components = Components(
        settings_for(
            tmp_path / "data",
            **inference.overrides,
            APPLIANCE__ACCESS__ALLOWED_SOURCE_ROOTS=f"[{tmp_path}]",
        )
    )
    components.embedder = embedder
    port = free_port()
    config = uvicorn.Config(
        create_app(components.settings, components),
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        log_level="warning",
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", components
    finally:
        running.should_exit = True
        thread.join(timeout=10)


def _register_and_sync_corpus(base: str, admin_key: str, corpus: Path) -> None:
    """Through the API, as an admin would: a source folder and the job that ingests it."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        source = client.post("/v1/sources", json={"path": str(corpus)}).json()
        job = client.post(f"/v1/sources/{source['source_id']}/sync").json()
        deadline = time.monotonic() + 300
        while (job := client.get(f"/v1/jobs/{job['job_id']}").json())["status"] != "done":
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
    assert job["failed"] == 0 and job["files_total"] == 5, job


def test_reader_asks_opens_a_citation_and_rates_auditor_and_admin_see_their_panels(
    server: tuple[str, Components], tmp_path: Path
) -> None:
    executable = _chromium()
    from playwright.sync_api import Page, expect, sync_playwright

    base, components = server
    keys = {
        role: components.keys.create(f"web-{role}", role, ["everyone"], "tests")[1]
        for role in ("reader", "auditor", "admin")
    }
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    _register_and_sync_corpus(base, keys["admin"], corpus)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def sign_in(page: Page, role: str) -> None:
        page.goto(base)  # the root redirects to /ui/
        page.fill("#key", keys[role])
        page.click("#sign-in")
        expect(page.locator("#who")).to_have_text(f"web-{role} ({role})")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)

        page.goto(base)
        assert page.url == f"{base}/ui/"
        page.fill("#key", "apk_nobody.wrong")
        page.click("#sign-in")
        expect(page.locator("#sign-in-error")).to_contain_text("Sign-in failed")
        shot(page, "01-sign-in-refused")

        # The reader: ask, watch the answer arrive in pieces, open citation 1, rate.
        sign_in(page, "reader")
        expect(page.locator("#admin-panel")).to_be_hidden()
        expect(page.locator("#audit-panel")).to_be_hidden()
        page.fill("#question", QUESTION)
        page.evaluate(
            """() => {
                window.answerUpdates = 0;
                new MutationObserver(() => window.answerUpdates++).observe(
                    document.querySelector("#answer"),
                    { childList: true, characterData: true, subtree: true });
            }"""
        )
        page.click("#ask")
        expect(page.locator("#answer")).not_to_be_empty()
        shot(page, "02-reader-answer-streaming")
        expect(page.locator("#answer-box")).to_have_attribute("data-done", "true")
        assert page.evaluate("window.answerUpdates") > 1, "the answer arrived in one piece"
        answer = page.inner_text("#answer")
        assert answer.strip()
        first = page.locator("#citations li button").first
        expect(first).to_have_text("incident-response.pdf, page 2")
        shot(page, "03-reader-answer-and-sources")

        first.click()
        expect(page.locator("#context-title")).to_contain_text("incident-response.pdf")
        cited = page.locator("#context-chunks .chunk.cited")
        expect(cited).to_have_count(1)
        expect(cited.locator(".meta")).to_contain_text("page 2")
        expect(cited).to_contain_text("4471")
        shot(page, "04-reader-citation-in-context")

        page.click("#feedback-up")
        expect(page.locator("#feedback-status")).to_have_text("Thank you: recorded.")
        shot(page, "05-reader-feedback")
        feedback = components.audit.records(kind="feedback")
        assert len(feedback) == 1
        record = feedback[0]
        assert record.actor == "web-reader" and record.payload["rating"] == "up"
        assert record.payload["question"] == QUESTION and record.payload["answer"] == answer
        pdf = document_id(corpus / "incident-response.pdf")
        assert record.payload["retrieved"][0]["doc_id"] == pdf

        # The auditor: the audit search, which finds the reader's rating.
        page.click("#sign-out")
        sign_in(page, "auditor")
        expect(page.locator("#ask-panel")).to_be_hidden()
        expect(page.locator("#audit-results tbody tr").first).to_be_visible()
        page.fill("#audit-form [name=kind]", "feedback")
        page.click("#audit-search")
        rows = page.locator("#audit-results tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("web-reader")
        expect(rows.first).to_contain_text(QUESTION)
        shot(page, "06-auditor-audit-search")

        # The admin: sources and jobs, and the same ask panel as a reader.
        page.click("#sign-out")
        sign_in(page, "admin")
        expect(page.locator("#audit-panel")).to_be_hidden()
        expect(page.locator("#ask-panel")).to_be_visible()
        expect(page.locator("#sources tbody")).to_contain_text(str(corpus))
        expect(page.locator("#jobs tbody tr").first).to_contain_text("done")
        expect(page.locator("#jobs tbody tr").first).to_contain_text("5/5")
        shot(page, "07-admin-sources-and-jobs")
        browser.close()
