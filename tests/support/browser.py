"""Headless Chromium for the browser tests: Debian's, driven by Playwright (whose own browser
download cannot work on these machines). scripts/install-browser.sh installs it (`make test` runs
that); without it the browser tests fail rather than skip, unless BOXOFFICE_SKIP_BROWSER=1 says
to skip them.

`PageWatch` records what a page does that a test should never see: a request to another origin
(every page must work offline), a console error (a Content-Security-Policy violation is one), an
uncaught exception, a failed request.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("BOXOFFICE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLIENT_ERROR_LOG = re.compile(
    r"Failed to load resource: the server responded with a status of 4\d\d "
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

skip_without_browser = pytest.mark.skipif(
    os.environ.get("BOXOFFICE_SKIP_BROWSER") == "1", reason="BOXOFFICE_SKIP_BROWSER=1"
)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/install-browser.sh "
            "(or set BOXOFFICE_SKIP_BROWSER=1 to skip the browser tests)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    def __init__(self, own_url: str) -> None:
        self.own_origin = urlsplit(own_url).netloc
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.problems: list[str] = []

    def attach(self, page: Any) -> Any:
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("requestfailed", self._failed)
        return page

    def _console(self, message: Any) -> None:
        # Chromium logs every 4xx answer to fetch() as a console error; a page showing the API's
        # refusals (a seat taken, a wrong password) is the page working. A 5xx is never fine.
        if message.type == "error" and not CLIENT_ERROR_LOG.match(message.text):
            self.problems.append(message.text)

    def _request(self, request: Any) -> None:
        self.requests.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if parts.scheme not in ("http", "https", "ws", "wss") or parts.netloc != self.own_origin:
            self.foreign.append(request.url)

    def _failed(self, request: Any) -> None:
        # A page closing at the end of a test aborts its poll in flight: not a problem.
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"failed: {request.url} {request.failure}")

    def assert_clean(self) -> None:
        assert not self.foreign, f"the page reached beyond its own server: {self.foreign}"
        assert not self.problems, self.problems
