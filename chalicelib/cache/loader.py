"""The PostgreSQL loader: a session's snapshot read from the source of truth, for a rebuild of the
cache and for every read while Redis is unavailable (one query for both, so both see the same
facts and render the same text)."""

from __future__ import annotations

import psycopg

from chalicelib.cache.snapshots import Snapshot, epoch_us
from chalicelib.db import in_transaction
from chalicelib.domain.errors import NotFound
from chalicelib.services.sessions import session_view


def load_snapshot(session_id: str) -> Snapshot:
    """The raw facts the statuses are computed from. Read committed is enough: a session's own
    fields never change after creation, and the seats come from one statement."""

    def work(conn: psycopg.Connection) -> Snapshot:
        row = conn.execute(
            """
            SELECT s.id, s.movie, s.room, s.starts_at, s.price_cents, s.total_seats
              FROM sessions s WHERE s.id = %s
            """,
            (session_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"session {session_id} not found")
        seats = conn.execute(
            """
            SELECT label, seat_row, number, sale_id IS NOT NULL AS sold, held_until
              FROM seats WHERE session_id = %s
             ORDER BY id
            """,
            (session_id,),
        ).fetchall()
        fields = session_view({**row, "available_seats": None})
        del fields["available_seats"]  # computed at read time
        return Snapshot(
            fields,
            [
                [
                    s["label"],
                    s["seat_row"],
                    s["number"],
                    s["sold"],
                    epoch_us(s["held_until"]) if s["held_until"] is not None else None,
                ]
                for s in seats
            ],
        )

    return in_transaction(work)
