"""The OpenAPI document and Swagger UI (issue 5)."""

from __future__ import annotations

from chalice import Response

from chalicelib.web.responses import json_response


def openapi_document() -> Response:
    return json_response({"openapi": "3.1.0", "info": {"title": "boxoffice", "version": "1"}})


def swagger_ui() -> Response:
    return json_response({"Code": "NotFound", "Message": "not built yet"}, 404)
