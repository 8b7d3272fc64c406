"""JSON answers, and the decorator that turns box-office errors into them."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.db import DatabaseUnavailable
from chalicelib.domain.errors import BoxOfficeError, NotFound, ServiceUnavailable
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


def endpoint(fn: Callable[..., Response]) -> Callable[..., Response]:
    @functools.wraps(fn)
    def answer(*args: Any, **kwargs: Any) -> Response:
        try:
            return fn(*args, **kwargs)
        except BoxOfficeError as exc:
            return error_response(exc)
        except DatabaseUnavailable as exc:
            return error_response(ServiceUnavailable(str(exc)))

    return answer


def parse_id(value: str, what: str) -> str:
    """Ids are UUIDs; anything else cannot name an existing thing."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise NotFound(f"{what} {value} not found") from None
