"""A session's snapshot, the raw facts its seat statuses are computed from, and what readers see
of it: the seat map and the session as JSON text, and the seat map's ETag.

A snapshot holds the session's fields and, per seat, whether it is sold and until when it is held.
Statuses (and `available_seats`) are computed when read, with the reader's clock, by the domain's
rule (`chalicelib.domain.seating.seat_status`), so a hold past its time reads AVAILABLE although
nothing was written when it ran out. Both the cached path and the PostgreSQL path render from a
snapshot with the same code, so they give the same text, and so the same ETag.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.domain.seating import count_available, next_status_change, seat_status
from chalicelib.services import views

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
END_OF_TIME_US = 2**63 - 1


@dataclass(frozen=True)
class Snapshot:
    """The session's fields (without available_seats) and its seats in map order, each as
    [label, row, number, sold, held_until in epoch microseconds or None]."""

    session: dict[str, Any]
    seats: list[list[Any]]

    def encode(self) -> bytes:
        return json.dumps([self.session, self.seats], separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Snapshot:
        session, seats = json.loads(raw)
        return cls(session, seats)

    def facts(self) -> list[tuple[bool, int | None]]:
        return [(sold, until) for _, _, _, sold, until in self.seats]


def epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_MICROSECOND


def now_us() -> int:
    return time.time_ns() // 1000


def render_seat_map(session_id: str, snapshot: Snapshot, now: int) -> views.SeatMap:
    return {
        "session_id": session_id,
        "seats": [
            {"label": label, "row": row, "number": number, "status": seat_status(sold, until, now)}
            for label, row, number, sold, until in snapshot.seats
        ],
    }


def render_session(snapshot: Snapshot, now: int) -> views.Session:
    return {**snapshot.session, "available_seats": count_available(snapshot.facts(), now)}


def to_json(body: Any) -> str:
    """The exact text Chalice sends for a dict body (chalice.app.Response.to_dict)."""
    return json.dumps(body, separators=(",", ":"))


def seat_map_etag(seat_map_json: str) -> str:
    """A strong entity tag for the seat map's JSON text: the same text gives the same tag in every
    process, whether it was rendered from a cached snapshot or read from PostgreSQL, so a client
    polling any instance gets 304 until a seat's status really changes."""
    return '"' + hashlib.blake2b(seat_map_json.encode(), digest_size=16).hexdigest() + '"'


def seat_map_json(session_id: str, snapshot: Snapshot, now: int) -> str:
    return to_json(render_seat_map(session_id, snapshot, now))


def session_json(snapshot: Snapshot, now: int) -> str:
    return to_json(render_session(snapshot, now))


@dataclass(frozen=True)
class Views:
    """What readers get from one snapshot, as JSON text (and the seat map's ETag, hashed once
    here, so a conditional read that ends in 304 costs a dictionary lookup and a string compare),
    good until `valid_until_us`."""

    snapshot: Snapshot
    valid_until_us: int
    seat_map_json: str
    seat_map_etag: str
    session_json: str

    @classmethod
    def render(cls, session_id: str, snapshot: Snapshot, now: int) -> Views:
        seat_map = seat_map_json(session_id, snapshot, now)
        changes_at = next_status_change(snapshot.facts(), now)
        return cls(
            snapshot,
            END_OF_TIME_US if changes_at is None else changes_at,
            seat_map,
            seat_map_etag(seat_map),
            session_json(snapshot, now),
        )
