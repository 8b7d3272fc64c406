"""SNS→SQS subscribers. Each records the event id it handled in the same transaction as its
effect, so a message delivered twice has one effect."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg

from chalicelib.db import in_transaction
from chalicelib.domain import events
from chalicelib.log import logger

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


def _first_seen(conn: psycopg.Connection, consumer: str, event_ids: set[str]) -> set[str]:
    """Record these events as handled by `consumer`; the ones it had not handled before. In id
    order, so two batches sharing events never wait on each other in opposite orders."""
    return {
        str(row["event_id"])
        for row in conn.execute(
            """
            INSERT INTO processed_events (consumer, event_id)
            SELECT %s, event_id FROM unnest(%s::uuid[]) AS event_id ORDER BY event_id
            ON CONFLICT DO NOTHING
            RETURNING event_id
            """,
            (consumer, sorted(event_ids)),
        ).fetchall()
    }


def parse_receipt_event(body: str) -> dict[str, Any]:
    """An event for the notifications subscriber: a sale's whose receipt can be written, or any
    other (which records nothing). PoisonMessage if a sale's payload is malformed, so it fails
    alone, before its batch's transaction."""
    event = parse_event(body)
    if event["type"] == events.PAYMENT_CONFIRMED:
        try:
            payload = event["payload"]
            for name in ("sale_id", "reservation_id", "customer_id"):
                uuid.UUID(str(payload[name]))
            if type(payload["amount_cents"]) is not int or payload["amount_cents"] < 0:
                raise TypeError("amount_cents is not a whole number")
        except (KeyError, TypeError, ValueError) as exc:
            raise PoisonMessage(f"no receipt for event {event['id']}: {exc}") from exc
    return event


def record_receipts_batch(batch: list[dict[str, Any]]) -> int:
    """notifications, a whole SQS batch in one transaction: one purchase receipt per sale, for
    the events seen for the first time. Returns how many receipts were written."""
    sales = [event for event in batch if event["type"] == events.PAYMENT_CONFIRMED]
    if not sales:
        return 0

    def work(conn: psycopg.Connection) -> int:
        first = _first_seen(conn, NOTIFICATIONS, {event["id"] for event in sales})
        receipts = []
        for event in sales:
            if event["id"] in first:
                first.discard(event["id"])  # the same event twice in one batch counts once
                receipts.append(event["payload"])
        if receipts:
            conn.execute(
                """
                INSERT INTO receipts (id, sale_id, reservation_id, customer_id, amount_cents)
                SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::uuid[], %s::int[])
                ON CONFLICT (sale_id) DO NOTHING
                """,
                (
                    [str(uuid.uuid4()) for _ in receipts],
                    [p["sale_id"] for p in receipts],
                    [p["reservation_id"] for p in receipts],
                    [p["customer_id"] for p in receipts],
                    [p["amount_cents"] for p in receipts],
                ),
            )
        for payload in receipts:
            logger.info("receipt sent", extra={"sale_id": payload["sale_id"]})
        return len(receipts)

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
        first = _first_seen(conn, ANALYTICS, {event["id"] for event, _ in counted})
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
