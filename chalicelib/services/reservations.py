"""Holds: take seats all-or-nothing without ever waiting on another buyer; read, cancel and expire
them.

Race strategy. A hold locks the seat rows it wants with `FOR NO KEY UPDATE SKIP LOCKED`: a seat
row that another transaction is taking right now is simply not returned, so the buyer learns at
once that the seat is contested (409) instead of queueing behind the other buyer. Because no hold
ever waits for another buyer, two holds asking for [A1, A3] and [A3, A1] can never deadlock. Seats
that were locked are then checked for being free at the transaction's clock (not sold, no hold
still in time) and taken in the same transaction. The `seats_guard` trigger and the table's
constraints back this up.

Seat cap. One customer holds and owns at most SEATS_PER_CUSTOMER seats of a session (live holds
plus seats bought). The count is taken in the hold's transaction, after a transaction-scoped
advisory lock on (customer, session): a customer's parallel holds of one session run one after
another through that count, so they cannot pass the cap together. Only the same customer's own
requests ever wait on that lock; different buyers never wait on each other.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import psycopg

from chalicelib.cache import invalidations
from chalicelib.db import after_commit, in_transaction, outbox
from chalicelib.domain import events
from chalicelib.domain.errors import (
    HoldLimitReached,
    InvalidState,
    NotFound,
    SeatUnavailable,
    StaleToken,
)
from chalicelib.domain.reservations import (
    ReservationStatus,
    check_can_cancel,
    check_seat_request,
    visible_status,
)
from chalicelib.domain.seating import SeatGrid, seat_order
from chalicelib.services import accounts, views
from chalicelib.services.accounts import SignedIn
from chalicelib.settings import get_settings


def reservation_view(row: dict[str, Any], now: datetime) -> views.Reservation:
    return {
        "id": str(row["id"]),
        "session_id": str(row["session_id"]),
        "seats": list(row["seats"]),
        "status": visible_status(row["status"], row["expires_at"], now).value,
        "expires_at": row["expires_at"].isoformat(),
        "amount_cents": row["amount_cents"],
    }


def seats_changed(session_id: str) -> None:
    """Once this transaction has committed, the cached seat map of the session is out of date."""
    after_commit(functools.partial(invalidations.changed, session_id))


def take_seats(
    conn: psycopg.Connection,
    *,
    customer_id: str,
    session_id: str,
    seats: list[str],
    hold_seconds: int,
    seats_per_customer: int | None = None,
    signed_in: SignedIn | None = None,
) -> dict[str, Any]:
    """The hold itself, inside the caller's transaction. Returns the reservation row. Kept apart
    from `hold_seats` so the benchmark can time this SQL on its own. `seats_per_customer`
    defaults to SEATS_PER_CUSTOMER (0: no cap); `signed_in`, the token that asks, is checked
    against the customer's row (401 when stale)."""
    check_seat_request(seats)
    if seats_per_customer is None:
        seats_per_customer = get_settings().seats_per_customer
    # The customer, and the lock that puts this customer's holds of this session one after
    # another until commit, so the count below sees every earlier one (the seat cap). Only this
    # customer's own requests can wait here; other buyers never do.
    customer = conn.execute(
        """
        SELECT role, token_version,
               pg_advisory_xact_lock(hashtextextended(%(customer)s::text || %(session)s::text, 0))
          FROM users WHERE id = %(customer)s::uuid
        """,
        {"customer": customer_id, "session": session_id},
    ).fetchone()
    if signed_in is not None:
        accounts.check_token_holder(customer, signed_in)
    elif customer is None:
        raise StaleToken()
    # A new statement, so a new snapshot: it sees the holds committed while we waited above.
    session = conn.execute(
        """
        SELECT price_cents, seat_rows, seats_per_row, starts_at <= now() AS started, now() AS now,
               (SELECT coalesce(sum(cardinality(r.seats)), 0)
                  FROM reservations r
                 WHERE r.customer_id = %(customer)s AND r.session_id = s.id
                   AND (r.status = 'CONFIRMED'
                        OR (r.status = 'PENDING' AND r.expires_at > now()))) AS customer_seats
          FROM sessions s WHERE s.id = %(session)s
        """,
        {"customer": customer_id, "session": session_id},
    ).fetchone()
    if session is None:
        raise NotFound(f"session {session_id} not found")
    unknown = SeatGrid(session["seat_rows"], session["seats_per_row"]).unknown(seats)
    if unknown:
        raise NotFound(f"no seats {', '.join(unknown)} in this session", seats=unknown)
    if session["started"]:
        raise InvalidState("the session has already started")
    # Before any seat is locked, so a refused hold never makes another buyer skip a seat.
    if seats_per_customer and session["customer_seats"] + len(seats) > seats_per_customer:
        raise HoldLimitReached(seats_per_customer, session["customer_seats"])

    # Lock without waiting: rows locked by a concurrent buyer are skipped, and count as taken.
    free = conn.execute(
        """
        SELECT id, label
          FROM seats
         WHERE session_id = %s AND label = ANY(%s)
           AND sale_id IS NULL AND (held_until IS NULL OR held_until <= now())
         ORDER BY id
           FOR NO KEY UPDATE SKIP LOCKED
        """,
        (session_id, seats),
    ).fetchall()
    taken = sorted(set(seats) - {row["label"] for row in free}, key=seat_order)
    if taken:
        raise SeatUnavailable(taken)

    reservation_id = str(uuid.uuid4())
    labels = sorted(seats, key=seat_order)
    reservation = conn.execute(
        """
        WITH reservation AS (
            INSERT INTO reservations (id, session_id, customer_id, status, seats, amount_cents,
                                      expires_at)
            VALUES (%(id)s, %(session_id)s, %(customer_id)s, 'PENDING', %(labels)s,
                    %(amount)s, now() + make_interval(secs => %(hold_seconds)s))
            RETURNING *
        ), held AS (
            UPDATE seats SET hold_id = %(id)s, held_until = (SELECT expires_at FROM reservation)
             WHERE id = ANY(%(seat_ids)s)
        ), lines AS (
            INSERT INTO reservation_seats (reservation_id, seat_id)
            SELECT %(id)s, unnest(%(seat_ids)s::bigint[])
        )
        SELECT * FROM reservation
        """,
        {
            "id": reservation_id,
            "session_id": session_id,
            "customer_id": customer_id,
            "labels": labels,
            "amount": session["price_cents"] * len(seats),
            "hold_seconds": hold_seconds,
            "seat_ids": [row["id"] for row in free],
        },
    ).fetchone()
    created = events.Event(
        events.RESERVATION_CREATED,
        reservation_id,
        {
            "reservation_id": reservation_id,
            "session_id": session_id,
            "customer_id": customer_id,
            "seats": labels,
            "amount_cents": reservation["amount_cents"],
            "expires_at": reservation["expires_at"].isoformat(),
        },
    )
    outbox.record(conn, [created], session["now"])
    outbox.schedule_expiry(conn, reservation_id, reservation["expires_at"])
    seats_changed(session_id)
    return reservation


def hold_seats(**hold: Any) -> dict[str, Any]:
    """`take_seats` (the same keyword arguments) in a transaction of its own, answered as the API
    shows a reservation."""

    def work(conn: psycopg.Connection) -> dict[str, Any]:
        reservation = take_seats(conn, **hold)
        return reservation_view(reservation, reservation["created_at"])

    return in_transaction(work)


def lock_own_reservation(
    conn: psycopg.Connection, reservation_id: str, customer_id: str
) -> tuple[dict[str, Any], datetime]:
    """The reservation row, locked for the rest of the transaction, and the database's clock
    once the lock is ours: the time to judge the hold by. Not now(), the transaction's start,
    which a wait for the lock (an expiry batch holding it, say) can leave seconds behind, long
    enough to pay for a hold that had run out. Another customer's reservation is reported as
    not found, so ids cannot be probed."""
    row = conn.execute(
        "SELECT r.* FROM reservations r WHERE r.id = %s FOR NO KEY UPDATE", (reservation_id,)
    ).fetchone()
    if row is None or str(row["customer_id"]) != customer_id:
        raise NotFound(f"reservation {reservation_id} not found")
    # A statement of its own: a select list is computed before its row lock is waited for.
    return row, conn.execute("SELECT clock_timestamp() AS now").fetchone()["now"]


def get_reservation(
    reservation_id: str, customer_id: str, *, signed_in: SignedIn | None = None
) -> dict[str, Any]:
    def work(conn: psycopg.Connection) -> dict[str, Any]:
        row = conn.execute(
            "SELECT r.*, now() AS now FROM reservations r WHERE r.id = %s", (reservation_id,)
        ).fetchone()
        if row is None or str(row["customer_id"]) != customer_id:
            raise NotFound(f"reservation {reservation_id} not found")
        return reservation_view(row, row["now"])

    return in_transaction(accounts.on_behalf_of(signed_in, work))


def release_seats(conn: psycopg.Connection, reservation_ids: list[str]) -> int:
    """Free the seats these holds still own. A seat already re-held by a later buyer after the
    hold ran out has another hold_id and is left alone."""
    return conn.execute(
        "UPDATE seats SET hold_id = NULL, held_until = NULL WHERE hold_id = ANY(%s::uuid[])",
        (reservation_ids,),
    ).rowcount


def cancel_reservation(
    reservation_id: str, customer_id: str, *, signed_in: SignedIn | None = None
) -> dict[str, Any]:
    def work(conn: psycopg.Connection) -> dict[str, Any]:
        row, now = lock_own_reservation(conn, reservation_id, customer_id)
        if not check_can_cancel(row["status"], row["expires_at"], now):
            return reservation_view(row, now)
        row = conn.execute(
            """
            UPDATE reservations SET status = 'CANCELLED', closed_at = now()
             WHERE id = %s RETURNING *
            """,
            (reservation_id,),
        ).fetchone()
        release_seats(conn, [reservation_id])
        cancelled = events.Event(
            events.RESERVATION_CANCELLED,
            reservation_id,
            {
                "reservation_id": reservation_id,
                "session_id": str(row["session_id"]),
                "customer_id": customer_id,
                "seats": list(row["seats"]),
            },
        )
        outbox.record(conn, [cancelled, events.seats_released(row, reason="cancelled")], now)
        seats_changed(str(row["session_id"]))
        return reservation_view(row, now)

    return in_transaction(accounts.on_behalf_of(signed_in, work))


def expire_holds(conn: psycopg.Connection, reservation_ids: list[str]) -> None:
    """Expire those of these holds that are still PENDING and past their time; anything else
    (paid, cancelled, already expired, not yet due) is left exactly as it is."""
    expired = conn.execute(
        """
        UPDATE reservations SET status = 'EXPIRED', closed_at = now()
         WHERE id = ANY(%s::uuid[]) AND status = 'PENDING' AND expires_at <= now()
        RETURNING *, now() AS now
        """,
        (reservation_ids,),
    ).fetchall()
    if not expired:
        return
    release_seats(conn, [str(r["id"]) for r in expired])
    happened: list[events.Event] = []
    for row in expired:
        happened.append(
            events.Event(
                events.RESERVATION_EXPIRED,
                str(row["id"]),
                {
                    "reservation_id": str(row["id"]),
                    "session_id": str(row["session_id"]),
                    "customer_id": str(row["customer_id"]),
                    "seats": list(row["seats"]),
                    "expires_at": row["expires_at"].isoformat(),
                },
            )
        )
        happened.append(events.seats_released(row, reason="expired"))
    outbox.record(conn, happened, expired[0]["now"])
    for session_id in sorted({str(r["session_id"]) for r in expired}):
        seats_changed(session_id)


def expire_due(reservation_ids: list[str], *, soon_s: float = 0.0) -> list[str]:
    """What the expiry queue's handler does with a batch of "expiry due" messages, in one
    transaction: expire the holds that are due, and schedule another message for any hold whose
    message came more than `soon_s` early. Returns the holds due within `soon_s` (the caller may
    wait for those instead)."""

    def work(conn: psycopg.Connection) -> list[str]:
        # Lock the rows (waiting is fine here: no buyer is behind us), in id order so that two
        # batches sharing holds cannot deadlock. A concurrent payment either finishes first, and
        # we see CONFIRMED, or waits for us and sees EXPIRED.
        conn.execute(
            """
            SELECT 1 FROM reservations WHERE id = ANY(%s::uuid[]) ORDER BY id
               FOR NO KEY UPDATE
            """,
            (reservation_ids,),
        )
        expire_holds(conn, reservation_ids)
        early = conn.execute(
            """
            SELECT id, expires_at, expires_at <= now() + make_interval(secs => %s) AS soon
              FROM reservations
             WHERE id = ANY(%s::uuid[]) AND status = 'PENDING' AND expires_at > now()
            """,
            (soon_s, reservation_ids),
        ).fetchall()
        for row in early:
            if not row["soon"]:
                outbox.schedule_expiry(conn, str(row["id"]), row["expires_at"])
        return [str(row["id"]) for row in early if row["soon"]]

    return in_transaction(work)


def sweep_expired_holds(batch_size: int = 500) -> int:
    """The safety net: expire one batch of stale holds; returns how many. SKIP LOCKED lets several
    sweepers (and the expiry handler) run at once without blocking on, or double-processing, the
    same hold."""

    def work(conn: psycopg.Connection) -> int:
        due = conn.execute(
            """
            SELECT id FROM reservations
             WHERE status = 'PENDING' AND expires_at <= now()
             ORDER BY expires_at
             LIMIT %s
               FOR NO KEY UPDATE SKIP LOCKED
            """,
            (batch_size,),
        ).fetchall()
        ids = [str(r["id"]) for r in due]
        if ids:
            expire_holds(conn, ids)
        return len(ids)

    return in_transaction(work)


__all__ = [
    "ReservationStatus",
    "cancel_reservation",
    "expire_due",
    "get_reservation",
    "hold_seats",
    "sweep_expired_holds",
    "take_seats",
]
