"""What the event subscribers recorded, read back: a customer's receipts (notifications) and a
session's sales counters (analytics). Both lag the sale by the time its event takes to arrive."""

from __future__ import annotations

from typing import Any

import psycopg

from chalicelib.db import in_transaction
from chalicelib.domain.errors import NotFound
from chalicelib.services import views
from chalicelib.services.accounts import SignedIn, on_behalf_of


def receipts_of(customer_id: str, *, signed_in: SignedIn | None = None) -> views.ReceiptList:
    rows = in_transaction(
        on_behalf_of(
            signed_in,
            lambda conn: conn.execute(
                """
                SELECT id, sale_id, reservation_id, amount_cents, sent_at FROM receipts
                 WHERE customer_id = %s ORDER BY sent_at DESC, id
                """,
                (customer_id,),
            ).fetchall(),
        )
    )
    return {
        "items": [
            {
                "id": str(r["id"]),
                "sale_id": str(r["sale_id"]),
                "reservation_id": str(r["reservation_id"]),
                "amount_cents": r["amount_cents"],
                "sent_at": r["sent_at"].isoformat(),
            }
            for r in rows
        ]
    }


def session_stats(session_id: str, *, signed_in: SignedIn | None = None) -> views.SessionStats:
    def work(conn: psycopg.Connection) -> dict[str, Any] | None:
        return conn.execute(
            """
            SELECT s.id AS session_id,
                   coalesce(st.sold_seats, 0) AS sold_seats,
                   coalesce(st.revenue_cents, 0) AS revenue_cents,
                   coalesce(st.expired_reservations, 0) AS expired_reservations,
                   coalesce(st.released_seats, 0) AS released_seats
              FROM sessions s LEFT JOIN session_stats st ON st.session_id = s.id
             WHERE s.id = %s
            """,
            (session_id,),
        ).fetchone()

    row = in_transaction(on_behalf_of(signed_in, work))
    if row is None:
        raise NotFound(f"session {session_id} not found")
    return {**row, "session_id": str(row["session_id"])}
