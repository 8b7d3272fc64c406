"""Cross-cutting HTTP concerns: a request id on every log line, an access log, body size."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import BoxOfficeError, ValidationError
from chalicelib.log import logger
from chalicelib.web import rate_limits
from chalicelib.web.errors import MethodNotAllowed
from chalicelib.web.responses import error_response
from chalicelib.web.schemas import MAX_BODY_BYTES, MAX_JSON_DEPTH, BodyTooLarge, nesting_exceeds


def _request_id(event: Any) -> str:
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


def log_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every event type: tag each log line with the invocation's request id."""
    logger.thread_safe_append_keys(request_id=_request_id(event))
    try:
        return get_response(event)
    finally:
        logger.thread_safe_remove_keys(["request_id"])


def _method_not_allowed(request: Request, chalice_answer: Response) -> Response:
    """Chalice answers a method its route lacks with its own 405 body; the contract's has the
    code MethodNotAllowed, and `Allow` names the route's methods."""
    error = MethodNotAllowed(f"{request.method} is not allowed here")
    return error_response(error, {"Allow": chalice_answer.headers.get("Allow", "")})


def http_guard(request: Request, get_response: Callable[[Request], Response]) -> Response:
    started = time.perf_counter()
    try:
        if request.raw_body and len(request.raw_body) > MAX_BODY_BYTES:
            raise BodyTooLarge()
        # Once, here, for every route and whatever the headers: nothing after this (the
        # Idempotency-Key fingerprint, the request models) has to survive a deep body.
        if request.raw_body and nesting_exceeds(request.raw_body):
            raise ValidationError(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
        rate_limits.check(request)
        response = get_response(request)
    except BoxOfficeError as exc:
        response = error_response(exc)
    if response.status_code == 405:
        response = _method_not_allowed(request, response)
    access = {
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if response.status_code >= 400 and isinstance(response.body, dict):
        access["code"] = response.body.get("Code")
    logger.info("request", extra=access)
    return response
