"""Rate limits (Redis: issue 4)."""

from __future__ import annotations

from chalice.app import Request

from chalicelib.web.tokens import Caller


def check(request: Request) -> None:
    """Every route: RATE_LIMIT_PER_MINUTE per caller."""
    return None


def check_holds(caller: Caller) -> None:
    """POST /reservations: RATE_LIMIT_HOLDS_PER_MINUTE per user."""
    return None
