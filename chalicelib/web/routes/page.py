"""GET /app and GET /app/{asset}: the seat-map page, where a person picks, holds and pays.

The page is plain HTML, CSS and JavaScript kept as files in chalicelib/web/page/ (no framework, no
build step, no CDN: it works offline). It reaches the API with relative URLs, like /api-docs, so
the same page works at the root of the local server and under an API Gateway stage prefix
(/api/app calls /api/sessions).

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

from chalice import Response
from pydantic import BaseModel, Field

from chalicelib.domain.errors import NotFound
from chalicelib.domain.reservations import MAX_SEATS_PER_HOLD
from chalicelib.settings import get_settings
from chalicelib.web import static
from chalicelib.web.registry import Routes

FILES = Path(__file__).resolve().parents[1] / "page"
CONTENT_SECURITY_POLICY = static.policy(
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
ISOLATED = {"Cross-Origin-Opener-Policy": "same-origin"}
ASSETS = static.Assets(
    files={name: FILES / name for name in ("app.css", "app.js", "icon.svg")},
    what="page file",
    # The HTML asks for each file by a hash of its content: a changed file is a new URL.
    cache_control="public, max-age=31536000, immutable",
    headers=ISOLATED,
)


class PageAssetPath(BaseModel):
    asset: str = Field(description="A file of the seat-map page", json_schema_extra=ASSETS.enum)


routes = Routes(__name__, tag="docs")


def versioned(name: str) -> str:
    digest = hashlib.blake2b(static.text(FILES / name).encode(), digest_size=6).hexdigest()
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
    html = static.text(FILES / "index.html")
    for placeholder, value in values.items():
        html = html.replace(placeholder, value)
    if "{{" in html:
        raise RuntimeError("index.html names a value _page_html() does not fill in")
    return html


@routes.get(
    "/app",
    summary="The seat-map page: pick, hold and pay in a browser",
    media={"text/html": static.TEXT},
    database=False,
    description="`/app?session=<id>` opens that session's seat map, kept live by polling "
    "the seat map with `If-None-Match`. Plain HTML, CSS and JavaScript served by the app.",
)
def seat_map_page() -> Response:
    return static.html_page(page_html(), CONTENT_SECURITY_POLICY, ISOLATED)


@routes.get(
    "/app/{asset}",
    summary="The seat-map page's script, style sheet and icon",
    media={"text/javascript": static.TEXT, "text/css": static.TEXT, "image/svg+xml": static.TEXT},
    errors=(NotFound,),
    path_params=PageAssetPath,
    database=False,
)
def seat_map_page_asset(asset: str) -> Response:
    return ASSETS.answer(asset)
