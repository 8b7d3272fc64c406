"""The audit that ends every benchmark run and backs the model-based and fault tests: every number
is a count of violations, and every one must be 0.

It reads only what PostgreSQL holds, from the history (reservation_seats, sales, outbox) as well
as the seats' current state, so it catches a double sale even if a later write tidied the seat row.
"""

from __future__ import annotations

from typing import Any

import psycopg

# The contract's three, first; the rest are further consistency checks.
CHECKS: dict[str, str] = {
    # A seat listed by two sales.
    "seats_sold_twice": """
        SELECT count(*) FROM (
            SELECT rs.seat_id
              FROM sales sa JOIN reservation_seats rs ON rs.reservation_id = sa.reservation_id
             GROUP BY rs.seat_id HAVING count(*) > 1) twice
    """,
    # A seat listed by two holds that are both still live (PENDING and in time).
    "seats_in_two_live_holds": """
        SELECT count(*) FROM (
            SELECT rs.seat_id
              FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id
             WHERE r.status = 'PENDING' AND r.expires_at > now()
             GROUP BY rs.seat_id HAVING count(*) > 1) twice
    """,
    # A sale with no payment.confirmed event in the outbox naming it.
    "sales_without_event": """
        SELECT count(*) FROM sales sa
         WHERE NOT EXISTS (
            SELECT 1 FROM outbox o
             WHERE o.event_type = 'payment.confirmed' AND o.aggregate_id = sa.reservation_id
               AND o.body -> 'payload' ->> 'sale_id' = sa.id::text)
    """,
    # A sold seat that is also in a live hold.
    "seats_sold_and_held": """
        SELECT count(DISTINCT rs.seat_id)
          FROM reservations r
          JOIN reservation_seats rs ON rs.reservation_id = r.id
          JOIN seats s ON s.id = rs.seat_id
         WHERE r.status = 'PENDING' AND r.expires_at > now() AND s.sale_id IS NOT NULL
    """,
    # The seat row and the sale disagree: a seat of a sale's reservation not marked with that
    # sale, or a seat marked sold by a sale whose reservation does not list it.
    "sale_seat_mismatch": """
        SELECT (SELECT count(*)
                  FROM sales sa
                  JOIN reservation_seats rs ON rs.reservation_id = sa.reservation_id
                  JOIN seats s ON s.id = rs.seat_id
                 WHERE s.sale_id IS DISTINCT FROM sa.id)
             + (SELECT count(*)
                  FROM seats s JOIN sales sa ON sa.id = s.sale_id
                 WHERE NOT EXISTS (SELECT 1 FROM reservation_seats rs
                                    WHERE rs.reservation_id = sa.reservation_id
                                      AND rs.seat_id = s.id))
    """,
    # A seat row pointing at a hold that is no longer PENDING (it should have been released).
    "seats_held_by_closed_reservation": """
        SELECT count(*) FROM seats s JOIN reservations r ON r.id = s.hold_id
         WHERE r.status <> 'PENDING'
    """,
    # A live PENDING hold whose seats are not all marked as held by it.
    "live_holds_not_on_seats": """
        SELECT count(*) FROM reservations r
          JOIN reservation_seats rs ON rs.reservation_id = r.id
          JOIN seats s ON s.id = rs.seat_id
         WHERE r.status = 'PENDING' AND r.expires_at > now() AND s.hold_id IS DISTINCT FROM r.id
    """,
    # A sale whose reservation is not CONFIRMED, or a CONFIRMED reservation without a sale.
    "sales_without_confirmed_reservation": """
        SELECT (SELECT count(*) FROM sales sa JOIN reservations r ON r.id = sa.reservation_id
                 WHERE r.status <> 'CONFIRMED')
             + (SELECT count(*) FROM reservations r
                 WHERE r.status = 'CONFIRMED'
                   AND NOT EXISTS (SELECT 1 FROM sales sa WHERE sa.reservation_id = r.id))
    """,
    # Money: each sale is its reservation's amount, which is the session's price per seat.
    "money_mismatch": """
        SELECT count(*) FROM sales sa
          JOIN reservations r ON r.id = sa.reservation_id
          JOIN sessions se ON se.id = sa.session_id
         WHERE sa.amount_cents <> r.amount_cents
            OR r.amount_cents <> se.price_cents * cardinality(r.seats)
            OR sa.customer_id <> r.customer_id OR sa.session_id <> r.session_id
    """,
}

CONTRACT_KEYS = ("seats_sold_twice", "seats_in_two_live_holds", "sales_without_event")


def audit(conn: psycopg.Connection) -> dict[str, int]:
    """Every check's count of violations (all 0 when the data is consistent)."""
    found = {}
    for name, query in CHECKS.items():
        row = conn.execute(query).fetchone()
        found[name] = int(row[0] if isinstance(row, tuple) else next(iter(row.values())))
    return found


def totals(conn: psycopg.Connection) -> dict[str, Any]:
    """What was sold and held, for the report."""
    row = conn.execute(
        """
        SELECT (SELECT count(*) FROM sales) AS sales,
               (SELECT coalesce(sum(amount_cents), 0) FROM sales) AS revenue_cents,
               (SELECT count(*) FROM seats WHERE sale_id IS NOT NULL) AS seats_sold,
               (SELECT count(*) FROM seats WHERE hold_id IS NOT NULL AND held_until > now())
                   AS seats_held_live,
               (SELECT count(*) FROM reservations) AS reservations,
               (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS outbox_unpublished
        """
    ).fetchone()
    names = ("sales", "revenue_cents", "seats_sold", "seats_held_live", "reservations")
    values = row if isinstance(row, tuple) else tuple(row.values())
    return dict(zip((*names, "outbox_unpublished"), (int(v) for v in values), strict=True))
