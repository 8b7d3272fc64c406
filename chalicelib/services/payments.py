"""Payment turns a live hold into a sale; the customer's purchase history."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from chalicelib.db import in_transaction, outbox
from chalicelib.domain import events
from chalicelib.domain.errors import HoldExpired
from chalicelib.domain.reservations import check_can_pay
from chalicelib.services import views
from chalicelib.services.accounts import SignedIn, on_behalf_of
from chalicelib.services.reservations import lock_own_reservation, seats_changed


def sale_view(row: dict[str, Any], seats: list[str]) -> views.Sale:
    return {
        "id": str(row["id"]),
        "reservation_id": str(row["reservation_id"]),
        "session_id": str(row["session_id"]),
        "seats": list(seats),
        "amount_cents": row["amount_cents"],
        "paid_at": row["paid_at"].isoformat(),
    }


def confirm_payment(
    conn: psycopg.Connection, reservation_id: str, customer_id: str
) -> dict[str, Any]:
    """Inside the caller's transaction. The hold's time is checked under the reservation's row
    lock, on the database clock at that moment, and the seats are sold only if this hold still
    owns all of them. A live hold is paid even if its session started meanwhile: the customer
    acted within the time the box office gave (no hold is taken once a session started)."""
    reservation, now = lock_own_reservation(conn, reservation_id, customer_id)
    if not check_can_pay(reservation["status"], reservation["expires_at"], now):
        sale = conn.execute(
            "SELECT * FROM sales WHERE reservation_id = %s", (reservation_id,)
        ).fetchone()
        return sale_view(sale, reservation["seats"])

    sale = conn.execute(
        """
        INSERT INTO sales (id, reservation_id, session_id, customer_id, amount_cents)
        VALUES (%s, %s, %s, %s, %s)
        RETURNING *
        """,
        (
            str(uuid.uuid4()),
            reservation_id,
            reservation["session_id"],
            customer_id,
            reservation["amount_cents"],
        ),
    ).fetchone()
    # A buyer whose hold ran out may lose a seat to the next buyer between our time check and
    # here; the WHERE clause then sells fewer seats than held and the whole payment is undone.
    sold = conn.execute(
        """
        UPDATE seats SET sale_id = %s, hold_id = NULL, held_until = NULL
         WHERE hold_id = %s
        """,
        (sale["id"], reservation_id),
    ).rowcount
    if sold != len(reservation["seats"]):
        raise HoldExpired("the hold expired before payment completed; reserve the seats again")
    conn.execute(
        "UPDATE reservations SET status = 'CONFIRMED', closed_at = now() WHERE id = %s",
        (reservation_id,),
    )
    confirmed = events.Event(
        events.PAYMENT_CONFIRMED,
        reservation_id,
        {
            "sale_id": str(sale["id"]),
            "reservation_id": reservation_id,
            "session_id": str(reservation["session_id"]),
            "customer_id": customer_id,
            "seats": list(reservation["seats"]),
            "amount_cents": sale["amount_cents"],
            "paid_at": sale["paid_at"].isoformat(),
        },
    )
    outbox.record(conn, [confirmed], now)
    seats_changed(str(reservation["session_id"]))
    return sale_view(sale, reservation["seats"])


def pay_reservation(
    reservation_id: str, customer_id: str, *, signed_in: SignedIn | None = None
) -> dict[str, Any]:
    return in_transaction(
        on_behalf_of(signed_in, lambda conn: confirm_payment(conn, reservation_id, customer_id))
    )


def purchase_history(customer_id: str, *, signed_in: SignedIn | None = None) -> views.PurchaseList:
    def work(conn: psycopg.Connection) -> dict[str, Any]:
        rows = conn.execute(
            """
            SELECT sa.id, sa.reservation_id, se.movie, se.room, se.starts_at, r.seats,
                   sa.amount_cents, sa.paid_at
              FROM sales sa
              JOIN reservations r ON r.id = sa.reservation_id
              JOIN sessions se ON se.id = sa.session_id
             WHERE sa.customer_id = %s
             ORDER BY sa.paid_at DESC, sa.id
            """,
            (customer_id,),
        ).fetchall()
        return {
            "items": [
                {
                    "id": str(r["id"]),
                    "reservation_id": str(r["reservation_id"]),
                    "movie": r["movie"],
                    "room": r["room"],
                    "starts_at": r["starts_at"].isoformat(),
                    "seats": list(r["seats"]),
                    "amount_cents": r["amount_cents"],
                    "paid_at": r["paid_at"].isoformat(),
                }
                for r in rows
            ]
        }

    return in_transaction(on_behalf_of(signed_in, work))
