"""The outbox relay: sends committed outbox rows to SNS (events) or SQS (expiry), then marks them.

Called right after a request commits, for that request's own rows, and by the scheduled sweep for
anything left behind (a crash between commit and publish, an AWS endpoint that was down). Rows are
claimed with SKIP LOCKED, so relays on many instances never send the same row at the same time;
a crash after sending but before marking sends it again later, which is why consumers are
idempotent on the event id (at-least-once delivery).
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import clients
from chalicelib.db import in_transaction
from chalicelib.log import logger
from chalicelib.settings import get_settings

SNS_BATCH = 10
SQS_BATCH = 10
MAX_SQS_DELAY = 900
SWEEP_RELAY_LOCK = 7_414_002
# After a failed send, requests stop trying for a moment and leave their rows to the sweep, so an
# AWS outage costs one timeout per instance per pause, not one per request.
PAUSE_AFTER_FAILURE_S = 5.0
_paused_until = 0.0


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _send_events(rows: list[dict[str, Any]]) -> list[int]:
    sent: list[int] = []
    topic = clients.events_topic_arn()
    for chunk in _chunks(rows, SNS_BATCH):
        answer = clients.client("sns").publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {
                    "Id": str(row["id"]),
                    "Message": json.dumps(row["body"]),
                    "MessageAttributes": {
                        "event_type": {"DataType": "String", "StringValue": row["event_type"]}
                    },
                }
                for row in chunk
            ],
        )
        sent.extend(int(entry["Id"]) for entry in answer.get("Successful", []))
    return sent


def _send_expiry_messages(rows: list[dict[str, Any]], now: datetime) -> list[int]:
    sent: list[int] = []
    queue = clients.queue_url(get_settings().expiry_queue_name)
    for chunk in _chunks(rows, SQS_BATCH):
        answer = clients.client("sqs").send_message_batch(
            QueueUrl=queue,
            Entries=[
                {
                    "Id": str(row["id"]),
                    "MessageBody": json.dumps(row["body"]),
                    "DelaySeconds": min(
                        MAX_SQS_DELAY,
                        max(0, math.ceil((row["deliver_at"] - now).total_seconds())),
                    ),
                }
                for row in chunk
            ],
        )
        sent.extend(int(entry["Id"]) for entry in answer.get("Successful", []))
    return sent


def _relay(conn: psycopg.Connection, outbox_ids: list[int] | None, limit: int) -> int:
    rows = conn.execute(
        """
        SELECT id, destination, event_type, body, deliver_at, now() AS now
          FROM outbox
         WHERE published_at IS NULL
           AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
         ORDER BY id
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
        """,
        {"ids": outbox_ids, "limit": limit},
    ).fetchall()
    if not rows:
        return 0
    sent: list[int] = []
    try:
        sent += _send_events([r for r in rows if r["destination"] == "events"])
        sent += _send_expiry_messages(
            [r for r in rows if r["destination"] == "expiry"], rows[0]["now"]
        )
    except (BotoCoreError, ClientError) as exc:
        global _paused_until
        _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
        logger.warning(
            "could not publish outbox rows; they stay queued for the next relay",
            extra={"error": repr(exc), "pending": len(rows) - len(sent)},
        )
    conn.execute(
        """
        UPDATE outbox
           SET published_at = CASE WHEN id = ANY(%(sent)s::bigint[]) THEN now() END,
               attempts = attempts + 1
         WHERE id = ANY(%(all)s::bigint[])
        """,
        {"sent": sent, "all": [r["id"] for r in rows]},
    )
    return len(sent)


def publish(outbox_ids: list[int]) -> int:
    """Send these rows now (the request path, right after commit). Never raises: whatever could
    not be sent is left for the sweep."""
    if not outbox_ids or time.monotonic() < _paused_until:
        return 0
    try:
        return in_transaction(lambda conn: _relay(conn, outbox_ids, len(outbox_ids)))
    except Exception as exc:  # the sale is already committed; never fail the request here
        logger.warning("outbox relay failed after commit", extra={"error": repr(exc)})
        return 0


def publish_backlog(batch_size: int = 100, max_batches: int = 50) -> int:
    """Send whatever is still unpublished, oldest first (the scheduled sweep). One sweeper at a
    time relays the backlog, so rows left behind go out in their original order."""
    total = 0
    for _ in range(max_batches):

        def work(conn: psycopg.Connection) -> int | None:
            got = conn.execute(
                "SELECT pg_try_advisory_xact_lock(%s) AS mine", (SWEEP_RELAY_LOCK,)
            ).fetchone()["mine"]
            return _relay(conn, None, batch_size) if got else None

        sent = in_transaction(work)
        if not sent:
            break
        total += sent
    return total
