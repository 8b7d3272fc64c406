"""Writing outbox rows inside the caller's transaction, so an event exists iff its change does."""

from __future__ import annotations

import uuid
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from chalicelib.domain.events import EXPIRY_DUE, Event


def record(conn: psycopg.Connection, events: list[Event], occurred_at: datetime) -> None:
    """Queue events for the SNS topic, in order. One pipelined statement per event: an expiry
    batch records hundreds at once."""
    if not events:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO outbox (event_id, destination, event_type, aggregate_id, body, created_at)
            VALUES (%s, 'events', %s, %s, %s, %s)
            """,
            [
                (
                    event.id,
                    event.type,
                    event.reservation_id,
                    Jsonb(event.envelope(occurred_at)),
                    occurred_at,
                )
                for event in events
            ],
        )


def schedule_expiry(conn: psycopg.Connection, reservation_id: str, expires_at: datetime) -> None:
    """Queue the delayed "expiry due" message for the SQS expiry queue; the relay computes the
    delay from deliver_at when it sends, so a late relay still wakes the handler on time."""
    conn.execute(
        """
        INSERT INTO outbox (event_id, destination, event_type, aggregate_id, body, deliver_at)
        VALUES (%s, 'expiry', %s, %s, %s, %s)
        """,
        (
            str(uuid.uuid4()),
            EXPIRY_DUE,
            reservation_id,
            Jsonb(
                {
                    "type": EXPIRY_DUE,
                    "reservation_id": reservation_id,
                    "expires_at": expires_at.isoformat(),
                }
            ),
            expires_at,
        ),
    )
