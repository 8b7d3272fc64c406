"""Idempotency-Key handling (Redis: issue 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Request

from chalicelib.web.tokens import Caller


def once(
    request: Request, caller: Caller, scope: str, act: Callable[[], tuple[int, Any]]
) -> tuple[int, Any]:
    return act()
