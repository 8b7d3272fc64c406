"""Request bodies the tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


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
