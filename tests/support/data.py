"""Request bodies, tokens and data changes the tests share."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

# The stage a live system runs (tests/e2e/conftest.py start_system), while this process runs
# "test": a token made here for such a system must carry that stage's audience.
LIVE_SYSTEM_STAGE = "local"


def session_body(**overrides: Any) -> dict[str, Any]:
    return {
        "movie": "Filme X - 19:00",
        "room": "Sala 1",
        "starts_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        "price_cents": 2500,
        "rows": 2,
        "seats_per_row": 8,
        **overrides,
    }


def move_hold_end(db: Any, reservation_ids: str | list[str], from_now: timedelta) -> None:
    """Set holds' end (the reservation's expires_at and its seats' held_until) to the database's
    now() + from_now: negative for a hold that has already run out."""
    ids = [reservation_ids] if isinstance(reservation_ids, str) else reservation_ids
    db.execute(
        "UPDATE reservations SET expires_at = now() + %s WHERE id = ANY(%s::uuid[])",
        (from_now, ids),
    )
    db.execute(
        "UPDATE seats SET held_until = now() + %s WHERE hold_id = ANY(%s::uuid[])", (from_now, ids)
    )


def live_token(user_id: str, role: str) -> str:
    """A token as a live system issues it (the same secret, its stage's audience), for a user
    this process made in the shared database."""
    from chalicelib.settings import get_settings
    from chalicelib.web import tokens

    own_stage = os.environ["STAGE"]
    os.environ["STAGE"] = LIVE_SYSTEM_STAGE
    get_settings.cache_clear()
    try:
        return tokens.issue(user_id, role)
    finally:
        os.environ["STAGE"] = own_stage
        get_settings.cache_clear()
