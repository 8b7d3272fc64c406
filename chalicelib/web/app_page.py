"""GET /app and GET /app/{asset}: the seat-map page, where a person picks, holds and pays.

The page is plain HTML, CSS and JavaScript kept as files in chalicelib/web/page/ (no framework, no
build step, no CDN: it works offline) and read once per process. It reaches the API with relative
URLs, like /api-docs, so the same page works at the root of the local server and under an API
Gateway stage prefix (/api/app calls /api/sessions).

The HTML names its style sheet and script with a hash of their content (`app/app.js?v=...`), so
those can be cached for a year while a new deployment is picked up at once: the HTML itself is
revalidated on every visit. Two settings reach the page in <meta> tags of the HTML: the
per-customer seat cap (the page lets a person pick no more) and the hold time.

The Content-Security-Policy lets the page run only its own script, load only its own files and
talk only to its own origin, with no inline script or style; Trusted Types make any assignment of
a string as HTML an error, so text from the API (a movie's title) can only ever be text.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import get_args

from chalice import Response

from chalicelib.domain.errors import NotFound
from chalicelib.domain.reservations import MAX_SEATS_PER_HOLD
from chalicelib.settings import get_settings
from chalicelib.web.responses import endpoint
from chalicelib.web.schemas import PageAsset

FILES = Path(__file__).with_name("page")
ASSETS: tuple[str, ...] = get_args(PageAsset)
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    )
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@functools.cache
def asset_text(name: str) -> str:
    return (FILES / name).read_text(encoding="utf-8")


def versioned(name: str) -> str:
    digest = hashlib.blake2b(asset_text(name).encode(), digest_size=6).hexdigest()
    return f"app/{name}?v={digest}"


def page_html() -> str:
    settings = get_settings()
    return _page_html(settings.seats_per_customer, settings.hold_seconds)


@functools.cache
def _page_html(seats_per_customer: int, hold_seconds: int) -> str:
    values = {
        "{{app.css}}": versioned("app.css"),
        "{{app.js}}": versioned("app.js"),
        "{{icon.svg}}": versioned("icon.svg"),
        "{{seats_per_customer}}": str(seats_per_customer),
        "{{seats_per_hold}}": str(MAX_SEATS_PER_HOLD),
        "{{hold_seconds}}": str(hold_seconds),
    }
    html = asset_text("index.html")
    for placeholder, value in values.items():
        html = html.replace(placeholder, value)
    if "{{" in html:
        raise RuntimeError("index.html names a value _page_html() does not fill in")
    return html


def page() -> Response:
    return Response(
        body=page_html(),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            **COMMON_HEADERS,
        },
    )


@endpoint
def page_asset(asset: str) -> Response:
    if asset not in ASSETS:
        raise NotFound(f"no page file {asset}")
    return Response(
        body=asset_text(asset),
        status_code=200,
        headers={
            "Content-Type": CONTENT_TYPES[Path(asset).suffix],
            # The HTML asks for each file by a hash of its content: a changed file is a new URL.
            "Cache-Control": "public, max-age=31536000, immutable",
            **COMMON_HEADERS,
        },
    )
