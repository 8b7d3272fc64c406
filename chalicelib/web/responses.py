"""JSON answers: successes, and the contract's error bodies."""

from __future__ import annotations

import uuid
from typing import Any

from chalice import Response

from chalicelib.domain.errors import BoxOfficeError, NotFound
from chalicelib.log import logger

# nosniff: a browser never reads a JSON answer (which may echo client input) as HTML or script.
JSON = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={**JSON, **(headers or {})})


def error_response(error: BoxOfficeError, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    retry_after = getattr(error, "retry_after", None)  # RateLimited, a busy service
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if error.status >= 500:
        logger.error(error.message, extra={"code": error.code})
    # A refusal (4xx) is logged once, by the access log line, with its code.
    return json_response(error.body(), error.status, headers)


def parse_id(value: str, what: str) -> str:
    """Ids are UUIDs; anything else cannot name an existing thing."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"{what} {value} not found") from None
