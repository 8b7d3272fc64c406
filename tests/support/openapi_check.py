"""Checks an answer against what the OpenAPI document promises for its operation and status."""

from __future__ import annotations

import json
from typing import Any

from openapi_schema_validator import OAS31Validator, oas31_format_checker


def served_document() -> dict[str, Any]:
    """The document the app serves at /openapi.json, built from its route registry."""
    import app
    from chalicelib.web.routes import docs

    return json.loads(docs.document_text(app.app))


def documented_response(document: dict[str, Any], method: str, path: str, status: int) -> dict:
    operation = document["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, (
        f"{method} {path} answered {status}, which the document does not list ({sorted(responses)})"
    )
    return responses[str(status)]


def assert_conforms(
    document: dict[str, Any], method: str, path: str, status: int, body: Any, headers=None
) -> None:
    """`path` is the document's template, e.g. /reservations/{reservation_id}."""
    response = documented_response(document, method, path, status)
    schema = response["content"]["application/json"]["schema"]
    validator = OAS31Validator(
        {"components": document["components"], **schema}, format_checker=oas31_format_checker
    )
    problems = [error.message for error in validator.iter_errors(body)]
    assert not problems, f"{method} {path} {status}: {problems} in {body}"
    for name, header in (response.get("headers") or {}).items():
        if header.get("required"):
            assert name.lower() in {h.lower() for h in (headers or {})}, f"{name} missing"
