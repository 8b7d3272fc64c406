"""Seat-map and session reads (Redis cache in front of PostgreSQL: issue 4; for now straight
from PostgreSQL)."""

from __future__ import annotations

from typing import Any

from chalicelib.services import sessions


def session(session_id: str) -> dict[str, Any]:
    return sessions.get_session(session_id)


def seat_map(session_id: str) -> dict[str, Any]:
    return sessions.seat_map(session_id)


def changed(session_id: str) -> None:
    """A hold, cancel, expiry or sale changed this session's seats."""
