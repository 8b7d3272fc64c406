"""A person's view of /api-docs: headless Chromium (Debian's, driven by Playwright) opens Swagger UI
from a real local HTTP server, sees every operation of the document listed, runs one with "Try it
out", and leaves a screenshot in test-artifacts/api-docs.png.

The page must work offline: every request it makes goes to the server itself. Chromium comes from
scripts/install-browser.sh (`make test` runs it); without it this test fails rather than skips,
unless BOXOFFICE_SKIP_BROWSER=1 says to skip it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import ARTIFACTS, PageWatch, skip_without_browser
from tests.support.live_server import serve_in_thread
from tests.support.openapi_check import served_document

pytestmark = skip_without_browser


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    import app as app_module

    with serve_in_thread(app_module.app) as url:
        yield url


def test_swagger_ui_lists_every_operation_and_runs_one(live_url, browser):
    document = served_document()
    expected = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watch = PageWatch(live_url)
    page = watch.attach(context.new_page())
    try:
        answer = page.goto(f"{live_url}/api-docs", wait_until="networkidle")
        assert answer is not None and answer.status == 200
        page.wait_for_selector(".opblock-summary", timeout=30_000)
        assert "boxoffice" in page.locator(".info .title").inner_text()

        listed = set()
        for block in page.locator(".opblock").all():
            method = block.locator(".opblock-summary-method").inner_text().strip().upper()
            path = block.locator(".opblock-summary-path").get_attribute("data-path")
            listed.add((method, path))
        assert listed == expected

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=True)

        # "Try it out" on GET /sessions: the relative server URL resolves to this server.
        operation = page.locator("#operations-sessions-list_sessions")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        status.wait_for(timeout=30_000)
        assert status.inner_text().strip().startswith("200")
        assert (
            '"items"' in operation.locator(".live-responses-table .microlight").first.inner_text()
        )
        page.screenshot(path=str(ARTIFACTS / "api-docs-try-it-out.png"), full_page=False)
    finally:
        context.close()
    watch.assert_clean()
