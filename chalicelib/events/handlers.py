"""What the Lambda event handlers in app.py do: SQS batches, expiry messages, the sweep.

Chalice has no partial-batch-failure response for SQS, and a raised exception would redeliver the
whole batch. So a batch is processed record by record; if some fail, the ones that succeeded are
deleted from the queue here and the exception is raised for the rest, which SQS redelivers and,
after the queue's maxReceiveCount, moves to the dead-letter queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import clients
from chalicelib.cache import seat_maps
from chalicelib.db import in_transaction
from chalicelib.events import relay, subscribers
from chalicelib.events.outbox import schedule_expiry
from chalicelib.log import logger
from chalicelib.services import reservations


class SQSRecord(Protocol):
    body: str
    receipt_handle: str
    to_dict: Callable[[], dict[str, Any]]


class BatchFailed(RuntimeError):
    pass


def _queue_url_of(record: SQSRecord) -> str:
    arn = record.to_dict()["eventSourceARN"]
    return clients.queue_url(arn.rsplit(":", 1)[-1])


def process_batch(records: Iterable[SQSRecord], handle: Callable[[str], Any]) -> int:
    done: list[SQSRecord] = []
    failed: list[tuple[SQSRecord, Exception]] = []
    for record in records:
        try:
            handle(record.body)
            done.append(record)
        except Exception as exc:
            logger.exception("message failed; it will be retried, then dead-lettered")
            failed.append((record, exc))
    if failed:
        if done:
            try:
                clients.client("sqs").delete_message_batch(
                    QueueUrl=_queue_url_of(done[0]),
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": r.receipt_handle}
                        for i, r in enumerate(done)
                    ],
                )
            except (BotoCoreError, ClientError):
                logger.warning("could not delete the processed part of a failed batch")
        raise BatchFailed(f"{len(failed)} of {len(failed) + len(done)} messages failed")
    return len(done)


def notify(body: str) -> None:
    subscribers.record_receipt(subscribers.parse_event(body))


def count(body: str) -> None:
    subscribers.record_analytics(subscribers.parse_event(body))


def expire(body: str) -> None:
    """One "expiry due" message. Early, late, duplicate or after-payment messages are harmless:
    the hold is expired only if it is still PENDING and past its time. A message that came too
    early (clock skew, an emulator's short delay) schedules another for the time left."""
    try:
        message = json.loads(body)
        reservation_id = str(message["reservation_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise subscribers.PoisonMessage(f"not an expiry message: {exc}") from exc
    expired = reservations.expire_hold(reservation_id)
    if expired.outbox_ids:
        _after_expiry(expired)
    else:
        relay.publish(in_transaction(lambda conn: _reschedule_if_early(conn, reservation_id)))


def _after_expiry(expired: reservations.Expired) -> None:
    for session_id in expired.session_ids:
        seat_maps.changed(session_id)
    relay.publish(expired.outbox_ids)


def _reschedule_if_early(conn, reservation_id: str) -> list[int]:
    row = conn.execute(
        """
        SELECT expires_at FROM reservations
         WHERE id = %s AND status = 'PENDING' AND expires_at > now()
        """,
        (reservation_id,),
    ).fetchone()
    return [schedule_expiry(conn, reservation_id, row["expires_at"])] if row else []


def sweep(time_budget_s: float = 20.0) -> dict[str, int]:
    """The safety net: expire every stale hold in batches, then relay the outbox backlog."""
    started = time.monotonic()
    expired = 0
    while time.monotonic() - started < time_budget_s:
        found, changes = reservations.sweep_expired_holds()
        expired += found
        _after_expiry(changes)
        if found == 0:
            break
    published = relay.publish_backlog()
    if expired or published:
        logger.info("sweep", extra={"expired": expired, "published": published})
    return {"expired": expired, "published": published}
