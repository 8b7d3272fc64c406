"""SNS→SQS subscribers. Each records the event id it handled in the same transaction as its
effect, so a message delivered twice has one effect."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg

from chalicelib.db import in_transaction
from chalicelib.domain import events
from chalicelib.domain.errors import NotFound
from chalicelib.log import logger
from chalicelib.services import views
from chalicelib.services.accounts import SignedIn, on_behalf_of

NOTIFICATIONS = "notifications"
ANALYTICS = "analytics"


class PoisonMessage(ValueError):
    """A message no retry can fix; it is retried anyway, then parked in the DLQ for a human."""


def parse_event(body: str) -> dict[str, Any]:
    """The event envelope, from a raw delivery or from an SNS notification wrapper."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":
            message = json.loads(message["Message"])
        if not isinstance(message, dict):
            raise PoisonMessage("event is not a JSON object")
        uuid.UUID(str(message["id"]))
        if not isinstance(message["type"], str) or not isinstance(message["payload"], dict):
            raise PoisonMessage("event has no type or payload")
    except (ValueError, KeyError, TypeError) as exc:
        raise PoisonMessage(f"not a boxoffice event: {exc}") from exc
    return message


def _first_time(conn: psycopg.Connection, consumer: str, event_id: str) -> bool:
    return (
        conn.execute(
            """
            INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s)
            ON CONFLICT DO NOTHING
            """,
            (consumer, event_id),
        ).rowcount
        == 1
    )


def record_receipt(event: dict[str, Any]) -> bool:
    """notifications: one purchase receipt per sale. Returns whether anything was recorded."""
    if event["type"] != events.PAYMENT_CONFIRMED:
        return False
    payload = event["payload"]

    def work(conn: psycopg.Connection) -> bool:
        if not _first_time(conn, NOTIFICATIONS, event["id"]):
            return False
        conn.execute(
            """
            INSERT INTO receipts (id, sale_id, reservation_id, customer_id, amount_cents)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (sale_id) DO NOTHING
            """,
            (
                str(uuid.uuid4()),
                payload["sale_id"],
                payload["reservation_id"],
                payload["customer_id"],
                payload["amount_cents"],
            ),
        )
        logger.info("receipt sent", extra={"sale_id": payload["sale_id"]})
        return True

    return in_transaction(work)


COUNTERS = ("sold_seats", "revenue_cents", "expired_reservations", "released_seats")


def _counter_changes(event: dict[str, Any]) -> dict[str, int]:
    payload = event["payload"]
    match event["type"]:
        case events.PAYMENT_CONFIRMED:
            return {"sold_seats": len(payload["seats"]), "revenue_cents": payload["amount_cents"]}
        case events.RESERVATION_EXPIRED:
            return {"expired_reservations": 1}
        case events.SEATS_RELEASED:
            return {"released_seats": len(payload["seats"])}
    return {}


def parse_counted_event(body: str) -> dict[str, Any]:
    """An event for the analytics counters, whose payload can be counted: PoisonMessage if not
    (so one malformed event fails alone, before its batch's transaction)."""
    event = parse_event(body)
    try:
        changes = _counter_changes(event)
        if changes:
            payload = event["payload"]
            uuid.UUID(str(payload["session_id"]))
            counts_seats = "sold_seats" in changes or "released_seats" in changes
            if counts_seats and not isinstance(payload["seats"], list):
                raise TypeError("seats is not a list")
            if not all(type(value) is int and value >= 0 for value in changes.values()):
                raise TypeError("a count or an amount is not a whole number")
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage(f"cannot count {event['type']} event {event['id']}: {exc}") from exc
    return event


def record_analytics(event: dict[str, Any]) -> bool:
    """analytics: per-session counters."""
    changes = _counter_changes(event)
    if not changes:
        return False

    def work(conn: psycopg.Connection) -> bool:
        if not _first_time(conn, ANALYTICS, event["id"]):
            return False
        _add_to_stats(
            conn, event["payload"]["session_id"], {**dict.fromkeys(COUNTERS, 0), **changes}
        )
        return True

    return in_transaction(work)


def _add_to_stats(conn: psycopg.Connection, session_id: str, changes: dict[str, int]) -> None:
    conn.execute(
        """
        INSERT INTO session_stats (session_id, sold_seats, revenue_cents,
                                   expired_reservations, released_seats)
        VALUES (%(session_id)s, %(sold_seats)s, %(revenue_cents)s,
                %(expired_reservations)s, %(released_seats)s)
        ON CONFLICT (session_id) DO UPDATE SET
            sold_seats = session_stats.sold_seats + EXCLUDED.sold_seats,
            revenue_cents = session_stats.revenue_cents + EXCLUDED.revenue_cents,
            expired_reservations =
                session_stats.expired_reservations + EXCLUDED.expired_reservations,
            released_seats = session_stats.released_seats + EXCLUDED.released_seats
        """,
        {"session_id": session_id, **changes},
    )


def record_analytics_batch(batch: list[dict[str, Any]]) -> int:
    """analytics, a whole SQS batch in one transaction: the events seen for the first time are
    summed per session, and each session's counters are updated once, in session order (two
    batches never wait on each other in opposite orders). Returns how many events counted."""
    counted = [(event, _counter_changes(event)) for event in batch]
    counted = [(event, changes) for event, changes in counted if changes]
    if not counted:
        return 0

    def work(conn: psycopg.Connection) -> int:
        first = {
            str(row["event_id"])
            for row in conn.execute(
                """
                INSERT INTO processed_events (consumer, event_id)
                SELECT %s, event_id FROM unnest(%s::uuid[]) AS event_id ORDER BY event_id
                ON CONFLICT DO NOTHING
                RETURNING event_id
                """,
                (ANALYTICS, sorted({event["id"] for event, _ in counted})),
            ).fetchall()
        }
        totals: dict[str, dict[str, int]] = {}
        recorded = 0
        for event, changes in counted:
            if event["id"] not in first:
                continue
            first.discard(event["id"])  # the same event twice in one batch counts once
            recorded += 1
            session = totals.setdefault(event["payload"]["session_id"], dict.fromkeys(COUNTERS, 0))
            for name, value in changes.items():
                session[name] += value
        for session_id in sorted(totals):
            _add_to_stats(conn, session_id, totals[session_id])
        return recorded

    return in_transaction(work)


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
