"""Screenings: create with all their seats, list upcoming ones. One session and its seat map are
read through the seat-map cache (chalicelib/cache/seat_maps.py), which falls back on PostgreSQL."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

import psycopg

from chalicelib.db import in_transaction
from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.domain.seating import SeatGrid
from chalicelib.services import views
from chalicelib.services.accounts import SignedIn, on_behalf_of

# available_seats is counted here in SQL, by the seat-status rule of chalicelib.domain.seating
# (not sold, and no hold still in time), so that listing a page of sessions is one query that reads
# no seat rows into Python. A session read on its own, and every seat map, computes statuses from
# the seats' raw facts with the domain's function; tests/integration/test_seat_status.py shows the
# two agree.
SESSION_COLUMNS = """
    s.id, s.movie, s.room, s.starts_at, s.price_cents, s.total_seats,
    (SELECT count(*) FROM seats
      WHERE seats.session_id = s.id AND seats.sale_id IS NULL
        AND (seats.held_until IS NULL OR seats.held_until <= now()))::int AS available_seats
"""


def session_view(row: dict[str, Any]) -> views.Session:
    return {
        "id": str(row["id"]),
        "movie": row["movie"],
        "room": row["room"],
        "starts_at": row["starts_at"].isoformat(),
        "price_cents": row["price_cents"],
        "total_seats": row["total_seats"],
        "available_seats": row["available_seats"],
    }


def create_session(
    *,
    movie: str,
    room: str,
    starts_at: datetime,
    price_cents: int,
    rows: int,
    seats_per_row: int,
    created_by: str | None,
    signed_in: SignedIn | None = None,
) -> dict[str, Any]:
    grid = SeatGrid(rows, seats_per_row)
    if problems := grid.problems():
        raise ValidationError("; ".join(problems))
    session_id = str(uuid.uuid4())
    labels = grid.labels()

    def work(conn: psycopg.Connection) -> dict[str, Any]:
        if conn.execute("SELECT %s <= now() AS past", (starts_at,)).fetchone()["past"]:
            raise ValidationError("starts_at must be in the future")
        conn.execute(
            """
            INSERT INTO sessions (id, movie, room, starts_at, price_cents, seat_rows,
                                  seats_per_row, created_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (session_id, movie, room, starts_at, price_cents, rows, seats_per_row, created_by),
        )
        # Every seat in one statement, in seat-map order (the identity column keeps that order).
        conn.execute(
            """
            INSERT INTO seats (session_id, label, seat_row, number)
            SELECT %s, seat_row || number, seat_row, number
              FROM unnest(%s::text[], %s::smallint[]) WITH ORDINALITY AS s(seat_row, number, n)
             ORDER BY n
            """,
            (session_id, [s.row for s in labels], [s.number for s in labels]),
        )
        return read_session(conn, session_id)

    return in_transaction(on_behalf_of(signed_in, work))


def read_session(conn: psycopg.Connection, session_id: str) -> views.Session:
    row = conn.execute(
        f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = %s", (session_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"session {session_id} not found")
    return session_view(row)


def _encode_cursor(row: dict[str, Any]) -> str:
    raw = json.dumps([row["starts_at"].isoformat(), str(row["id"])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        starts_at, session_id = json.loads(raw)
        return datetime.fromisoformat(starts_at), str(uuid.UUID(session_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValidationError("cursor is not valid; use next_cursor from a previous page") from None


def list_sessions(*, limit: int, cursor: str | None) -> views.SessionPage:
    after = _decode_cursor(cursor) if cursor else None

    def work(conn: psycopg.Connection) -> dict[str, Any]:
        # Keyset paging on (starts_at, id): stable under inserts, no OFFSET scans.
        rows = conn.execute(
            f"""
            SELECT {SESSION_COLUMNS}
              FROM sessions s
             WHERE s.starts_at > now()
               AND (%(after)s::boolean IS FALSE OR (s.starts_at, s.id) > (%(at)s, %(id)s))
             ORDER BY s.starts_at, s.id
             LIMIT %(limit)s
            """,
            {
                "after": after is not None,
                "at": after[0] if after else None,
                "id": after[1] if after else None,
                "limit": limit + 1,
            },
        ).fetchall()
        page = rows[:limit]
        return {
            "items": [session_view(r) for r in page],
            "next_cursor": _encode_cursor(page[-1]) if len(rows) > limit else None,
        }

    return in_transaction(work)
