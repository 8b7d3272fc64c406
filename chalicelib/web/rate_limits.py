"""Rate limits (Redis: issue 4)."""

from __future__ import annotations

from chalice.app import Request


def check(request: Request) -> None:
    return None
