"""GET /health: PostgreSQL decides up or down; Redis or AWS failing only degrades the service."""

from __future__ import annotations

from collections.abc import Callable

from chalice import Response

from chalicelib.aws import clients
from chalicelib.cache import redis_client
from chalicelib.db import get_pool
from chalicelib.settings import get_settings
from chalicelib.web.responses import json_response


def _postgres() -> None:
    with get_pool().connection(timeout=2) as conn:
        conn.execute("SELECT 1")


def _redis() -> None:
    redis_client().ping()


def _aws() -> None:
    clients.client("sqs").get_queue_url(QueueName=get_settings().expiry_queue_name)


def _outcome(check: Callable[[], None]) -> str:
    try:
        check()
        return "ok"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]


def health() -> Response:
    checks = {"postgres": _outcome(_postgres), "redis": _outcome(_redis), "aws": _outcome(_aws)}
    if checks["postgres"] != "ok":
        body = {
            "status": "unavailable",
            "checks": checks,
            "Code": "ServiceUnavailable",
            "Message": "PostgreSQL is not reachable",
        }
        return json_response(body, 503)
    status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
    return json_response({"status": status, "checks": checks})
