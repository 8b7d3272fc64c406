"""GET /health: PostgreSQL decides up or down; Redis or AWS failing only degrades the service.

A failing check reads "unavailable" and nothing more: the reason (host names, ports, on AWS
possibly account ids) goes to the log. The AWS check, a live SQS call, is reused for
AWS_CHECK_SECONDS per process, so polling /health does not turn into AWS traffic; PostgreSQL and
Redis are asked every time (a connection from the pool and a ping). The route is rate limited like
every other one (the limits fail open when Redis is down, so it still answers then).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated, Literal

from chalice import Response
from pydantic import Field
from typing_extensions import TypedDict

from chalicelib.aws import clients
from chalicelib.cache import redis_client
from chalicelib.db import get_pool
from chalicelib.log import logger
from chalicelib.services.views import shape
from chalicelib.settings import get_settings
from chalicelib.web.registry import Routes
from chalicelib.web.responses import json_response

OK = "ok"
UNAVAILABLE = "unavailable"
AWS_CHECK_SECONDS = 5.0

Outcome = Literal["ok", "unavailable"]


@shape
class HealthChecks(TypedDict):
    """Each dependency's check: "ok" or "unavailable" (the reason goes to the log, never here)."""

    postgres: Annotated[Outcome, Field(description="A connection from the pool runs SELECT 1")]
    redis: Annotated[Outcome, Field(description="PING; seats still sell without Redis")]
    aws: Annotated[
        Outcome, Field(description="The expiry queue's URL from SQS; the answer is reused for 5 s")
    ]


@shape
class Health(TypedDict):
    status: Annotated[
        Literal["ok", "degraded"],
        Field(description="degraded: Redis or the AWS endpoint is down; seats still sell"),
    ]
    checks: HealthChecks


@shape
class HealthUnavailable(TypedDict):
    status: Literal["unavailable"]
    checks: HealthChecks
    Code: Literal["ServiceUnavailable"]
    Message: str


routes = Routes(__name__, tag="operations")

_aws_lock = threading.Lock()
_aws_checked: tuple[float, str] | None = None  # (time.monotonic() of the check, its outcome)


def _postgres() -> None:
    with get_pool().connection(timeout=2) as conn:
        conn.execute("SELECT 1")


def _redis() -> None:
    redis_client().ping()


def _aws() -> None:
    clients.client("sqs").get_queue_url(QueueName=get_settings().expiry_queue_name)


def _outcome(name: str, check: Callable[[], None]) -> str:
    try:
        check()
        return OK
    except Exception as exc:
        logger.warning(
            "health check failed", extra={"check": name, "error": f"{type(exc).__name__}: {exc}"}
        )
        return UNAVAILABLE


def _aws_outcome() -> str:
    """The AWS check, asked at most once per AWS_CHECK_SECONDS by this process; requests that
    arrive while one thread asks use the last answer rather than queue behind it."""
    global _aws_checked
    checked = _aws_checked
    if checked is not None and time.monotonic() - checked[0] < AWS_CHECK_SECONDS:
        return checked[1]
    if not _aws_lock.acquire(blocking=checked is None):
        return checked[1]
    try:
        outcome = _outcome("aws", _aws)
        _aws_checked = (time.monotonic(), outcome)
        return outcome
    finally:
        _aws_lock.release()


def forget_aws_check() -> None:
    """Ask AWS on the next call (tests that repoint the endpoint)."""
    global _aws_checked
    _aws_checked = None


@routes.get(
    "/health",
    summary="Health of the service and its dependencies",
    response=Health,
    error_bodies={503: HealthUnavailable},
    description="200 while PostgreSQL answers (status `degraded` when Redis or the AWS "
    "endpoint does not: seats still sell); 503 when PostgreSQL is down. A failing check "
    'reads `"unavailable"`; why goes to the log. The AWS check is reused for 5 s. Rate '
    "limited like every route (without Redis the limits are off, and it still answers).",
)
def health_check() -> Response:
    checks: HealthChecks = {
        "postgres": _outcome("postgres", _postgres),
        "redis": _outcome("redis", _redis),
        "aws": _aws_outcome(),
    }
    if checks["postgres"] != OK:
        body: HealthUnavailable = {
            "status": "unavailable",
            "checks": checks,
            "Code": "ServiceUnavailable",
            "Message": "PostgreSQL is not reachable",
        }
        return json_response(body, 503)
    status = "ok" if all(v == OK for v in checks.values()) else "degraded"
    healthy: Health = {"status": status, "checks": checks}
    return json_response(healthy)
