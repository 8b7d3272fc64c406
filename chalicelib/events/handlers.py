"""What the Lambda event handlers in app.py do: SQS batches, expiry messages, the sweep.

A batch is processed record by record, and only the records that failed are delivered again
(then, after the queue's maxReceiveCount, moved to the dead-letter queue). Two ways, one per
runtime:
- On AWS the template turns on ReportBatchItemFailures for each SQS event source and sets
  SQS_REPORT_BATCH_ITEM_FAILURES: the handler returns the failed message ids and Lambda deletes
  the rest. Chalice has no option for this, but it hands the handler's return value to Lambda.
- Elsewhere (the local event runner, which ignores return values), the records that succeeded are
  deleted from the queue here and an exception is raised for the rest.
The two settings must go together: a reported failure without ReportBatchItemFailures on the
event source would count as success and delete the failed messages, which is why the packaging
tests check the template sets both or neither.
One poison message never takes good ones with it: a batch handled in one transaction (analytics,
expiries) whose transaction fails for any reason but an unreachable database is handled again
message by message, and only the messages that fail alone are failed. `python -m chalicelib.admin
redrive` sends dead-lettered messages back once their cause is fixed (chalicelib/events/redrive.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import clients
from chalicelib.db import DatabaseUnavailable
from chalicelib.events import relay, subscribers
from chalicelib.log import logger
from chalicelib.services import reservations
from chalicelib.settings import get_settings

# The relay returns with this much of its Lambda time left; the next run has started by then.
RELAY_STOP_MARGIN_MS = 5_000
# An expiry message comes up to a second early; its handler waits that out in steps.
WAIT_FOR_DUE_S = 1.2
DUE_STEP_S = 0.1


class SQSRecord(Protocol):
    body: str
    receipt_handle: str
    to_dict: Callable[[], dict[str, Any]]


class BatchFailed(RuntimeError):
    def __init__(self, failed: list[SQSRecord], total: int, *, reported: bool) -> None:
        super().__init__(f"{len(failed)} of {total} messages failed")
        self.message_ids = [record.to_dict()["messageId"] for record in failed]
        self.reported = reported  # the caller answers Lambda with the ids instead of raising


def sqs_batch_response(handle: Callable[..., Any], records: Iterable[SQSRecord], *args: Any):
    """Run a batch handler and answer Lambda: the failed messages' ids when failures are reported
    per item, an empty list when all went well. Any other failure raises (the whole batch is
    delivered again; the handlers are idempotent)."""
    try:
        handle(records, *args)
    except BatchFailed as failed:
        if not failed.reported:
            raise
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed.message_ids]}
    return {"batchItemFailures": []}


def _queue_url_of(record: SQSRecord) -> str:
    arn = record.to_dict()["eventSourceARN"]
    return clients.queue_url(arn.rsplit(":", 1)[-1])


def _fail_part(done: list[SQSRecord], failed: list[SQSRecord]) -> None:
    """Raise for the failed records; unless Lambda is told which ones failed (and deletes the
    others itself), first delete the records that were handled, so SQS delivers only the rest
    again."""
    total = len(done) + len(failed)
    if get_settings().report_batch_item_failures:
        raise BatchFailed(failed, total, reported=True)
    if done:
        try:
            clients.client("sqs").delete_message_batch(
                QueueUrl=_queue_url_of(done[0]),
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r.receipt_handle} for i, r in enumerate(done)
                ],
            )
        except (BotoCoreError, ClientError):
            logger.warning("could not delete the processed part of a failed batch")
    raise BatchFailed(failed, total, reported=False)


def _expiring_reservations(body: str) -> list[str]:
    """The holds an "expiry due" message names: {"reservation_ids": [...]} as the relay sends
    them (holds due in the same second share a message), or {"reservation_id": ...}."""
    try:
        message = json.loads(body)
        ids = (
            message["reservation_ids"]
            if "reservation_ids" in message
            else [message["reservation_id"]]
        )
        if not isinstance(ids, list) or not ids:
            raise TypeError("reservation_ids is not a list of ids")
        return [str(uuid.UUID(str(i))) for i in ids]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise subscribers.PoisonMessage(f"not an expiry message: {exc}") from exc


def _handle_together(
    records: Iterable[SQSRecord], parse: Callable[[str], Any], handle_all: Callable[[list], Any]
) -> int:
    """A batch whose parsed messages go to one call (a transaction, or a few for expiries). A
    message that cannot be parsed fails alone (retried, then dead-lettered). If the call fails
    because PostgreSQL is unreachable, the whole batch fails and SQS delivers it again (the
    handlers are idempotent); if it fails for any other reason, a message in it may be poison, so
    each message is handled again on its own and only those that fail alone are left to SQS."""
    good: list[SQSRecord] = []
    poison: list[SQSRecord] = []
    parsed: list[Any] = []
    for record in records:
        try:
            parsed.append(parse(record.body))
            good.append(record)
        except subscribers.PoisonMessage:
            logger.exception("message failed; it will be retried, then dead-lettered")
            poison.append(record)
    if parsed:
        try:
            handle_all(parsed)
        except DatabaseUnavailable:
            raise
        except Exception:
            logger.exception("batch failed; handling its messages one by one")
            good, failed = _one_by_one(good, parsed, handle_all)
            poison += failed
    if poison:
        _fail_part(good, poison)
    return len(good)


def _one_by_one(
    records: list[SQSRecord], parsed: list[Any], handle_all: Callable[[list], Any]
) -> tuple[list[SQSRecord], list[SQSRecord]]:
    """Each message in a call of its own: (the records handled, the records that failed)."""
    done: list[SQSRecord] = []
    failed: list[SQSRecord] = []
    for record, message in zip(records, parsed, strict=True):
        try:
            handle_all([message])
            done.append(record)
        except DatabaseUnavailable:
            raise
        except Exception:
            logger.exception("message failed; it will be retried, then dead-lettered")
            failed.append(record)
    return done, failed


def expire_batch(records: Iterable[SQSRecord]) -> int:
    """A batch of "expiry due" messages (each naming one or more holds), expired together.
    Early, late, duplicate or after-payment messages are harmless: a hold is expired only if it
    is still PENDING and past its time."""
    return _handle_together(
        records,
        _expiring_reservations,
        lambda named: expire_when_due([i for ids in named for i in ids]),
    )


def expire_when_due(reservation_ids: list[str]) -> None:
    """Expire the holds that are due now, then those due within WAIT_FOR_DUE_S as they come due
    (SQS delays are whole seconds and the relay sends a message at the start of the second its
    holds run out in, so they arrive up to a second early); a hold due later gets a new message."""
    deadline = time.monotonic() + WAIT_FOR_DUE_S
    soon = reservations.expire_due(reservation_ids, soon_s=WAIT_FOR_DUE_S)
    while soon:  # once the deadline passes, soon_s is 0: what is not due yet is rescheduled
        time.sleep(DUE_STEP_S)
        soon = reservations.expire_due(soon, soon_s=max(0.0, deadline - time.monotonic()))


def receipt_batch(records: Iterable[SQSRecord]) -> int:
    """The notifications queue: a batch of sales' receipts written in one transaction."""
    return _handle_together(
        records, subscribers.parse_receipt_event, subscribers.record_receipts_batch
    )


def count_batch(records: Iterable[SQSRecord]) -> int:
    """The analytics queue: a batch of events counted in one transaction."""
    return _handle_together(
        records, subscribers.parse_counted_event, subscribers.record_analytics_batch
    )


def relay_outbox(remaining_ms: Callable[[], int]) -> int:
    """The relay function: relays the outbox until its Lambda time is nearly up."""
    return relay.run(lambda: remaining_ms() > RELAY_STOP_MARGIN_MS)


def sweep(time_budget_s: float = 20.0) -> dict[str, int]:
    """The safety net: expire every stale hold in batches, then relay the outbox backlog (in case
    the relay function is down)."""
    started = time.monotonic()
    expired = 0
    while time.monotonic() - started < time_budget_s:
        found = reservations.sweep_expired_holds()
        expired += found
        if found == 0:
            break
    published = relay.publish_backlog()
    if expired or published:
        logger.info("sweep", extra={"expired": expired, "published": published})
    return {"expired": expired, "published": published}
