"""GET /openapi.json and GET /api-docs: the OpenAPI document and Swagger UI over it.

Swagger UI 5 is served by the app itself (no CDN: clients may be offline). Its script and style
sheet are the ones AWS Lambda Powertools, a runtime dependency, ships for its own offline Swagger
UI; the page and the script that starts it are ours, in chalicelib/web/api_docs/. The page at
/api-docs loads its style sheet and scripts from /api-docs/{asset} with relative URLs, and the
document from openapi.json beside it, so the same page works at the root of the local server and
under an API Gateway stage prefix (/api/api-docs).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import aws_lambda_powertools
from chalice import Chalice, Response
from pydantic import BaseModel, Field, TypeAdapter

from chalicelib.domain.errors import NotFound
from chalicelib.web import openapi, static
from chalicelib.web.registry import Routes

FILES = Path(__file__).resolve().parents[1] / "api_docs"
SWAGGER_UI = Path(aws_lambda_powertools.__file__).parent / "event_handler/openapi/swagger_ui"
ASSETS = static.Assets(
    files={
        "swagger-ui.css": SWAGGER_UI / "swagger-ui.min.css",
        "swagger-ui-bundle.js": SWAGGER_UI / "swagger-ui-bundle.min.js",
        "swagger-initializer.js": FILES / "swagger-initializer.js",
    },
    what="Swagger UI file",
    cache_control="public, max-age=86400",
    headers={},
)
# The page runs only its own scripts, talks only to its own origin, and cannot be framed.
# Swagger UI sets style attributes, hence 'unsafe-inline' for styles (not for scripts).
CONTENT_SECURITY_POLICY = static.policy(
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


class DocsAssetPath(BaseModel):
    asset: str = Field(
        description="A file of the packaged Swagger UI", json_schema_extra=ASSETS.enum
    )


routes = Routes(__name__, tag="docs")


@functools.cache
def document_text(app: Chalice) -> str:
    """The app's document, built once per process."""
    return json.dumps(openapi.build_document(app), separators=(",", ":"))


@routes.get(
    "/openapi.json",
    summary="This OpenAPI document",
    media={"application/json": TypeAdapter(dict[str, Any]).json_schema()},
    database=False,
)
def openapi_document() -> Response:
    return Response(
        body=document_text(routes.current_app),
        status_code=200,
        headers={"Content-Type": "application/json", **static.COMMON_HEADERS},
    )


@routes.get(
    "/api-docs",
    summary="Swagger UI over this document",
    media={"text/html": static.TEXT},
    database=False,
)
def api_docs() -> Response:
    return static.html_page(static.text(FILES / "index.html"), CONTENT_SECURITY_POLICY, {})


@routes.get(
    "/api-docs/{asset}",
    summary="Swagger UI's scripts and style sheet",
    media={"text/javascript": static.TEXT, "text/css": static.TEXT},
    errors=(NotFound,),
    path_params=DocsAssetPath,
    database=False,
)
def api_docs_asset(asset: str) -> Response:
    return ASSETS.answer(asset)
