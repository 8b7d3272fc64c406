"""GET /openapi.json and GET /api-docs: the OpenAPI document and Swagger UI over it.

Swagger UI comes from the swagger-ui-bundle package and is served by the app itself (no CDN:
clients may be offline): the page at /api-docs loads its style sheet and scripts from
/api-docs/{asset} with relative URLs, and the document from openapi.json beside it, so the same
page works at the root of the local server and under an API Gateway stage prefix (/api/api-docs).
All of it is text (HTML, CSS, JavaScript): nothing needs API Gateway's binary media types.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import get_args

from chalice import Response

from chalicelib.domain.errors import NotFound
from chalicelib.web import openapi
from chalicelib.web.responses import endpoint
from chalicelib.web.schemas import SwaggerAsset

ASSETS: tuple[str, ...] = get_args(SwaggerAsset)
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
# The page runs only its own scripts, talks only to its own origin, and cannot be framed.
# Swagger UI sets style attributes, hence 'unsafe-inline' for styles (not for scripts).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>boxoffice API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" type="text/css" href="api-docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="api-docs/swagger-ui-bundle.js" charset="utf-8"></script>
  <script src="api-docs/swagger-initializer.js" charset="utf-8"></script>
</body>
</html>
"""

INITIALIZER = """\
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    displayRequestDuration: true,
  });
});
"""

_SOURCE_MAP = re.compile(r"\n(?://# sourceMappingURL=\S+|/\*# sourceMappingURL=[^*]+\*/)\s*$")


@functools.cache
def document_text() -> str:
    """The document, built once per process."""
    return json.dumps(openapi.build_document(), separators=(",", ":"))


def document() -> dict:
    return json.loads(document_text())


def openapi_document() -> Response:
    return Response(
        body=document_text(),
        status_code=200,
        headers={"Content-Type": "application/json", **COMMON_HEADERS},
    )


def swagger_ui() -> Response:
    return Response(
        body=PAGE,
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-cache",
            **COMMON_HEADERS,
        },
    )


def _bundle_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path  # imported on first use only

    return Path(str(swagger_ui_path))


@functools.cache
def asset_text(name: str) -> str:
    if name == "swagger-initializer.js":
        return INITIALIZER
    text = (_bundle_dir() / name).read_text(encoding="utf-8")
    # The .map files are not served; without this line browsers' dev tools would ask for them.
    return _SOURCE_MAP.sub("\n", text)


@endpoint
def swagger_asset(asset: str) -> Response:
    if asset not in ASSETS:
        raise NotFound(f"no Swagger UI file {asset}")
    return Response(
        body=asset_text(asset),
        status_code=200,
        headers={
            "Content-Type": CONTENT_TYPES[Path(asset).suffix],
            "Cache-Control": "public, max-age=86400",
            **COMMON_HEADERS,
        },
    )
