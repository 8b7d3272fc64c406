"""The outbox relay: sends committed outbox rows to SNS (events) or SQS (expiry), then marks them.

Off the buyer's path. A request commits its change and its outbox rows and answers; it makes no
AWS call. The relay function (`relay_outbox` in app.py, started every minute, each run polling for
about a minute) picks rows up within POLL_S and sends them in batches: a 10-entry PublishBatch
carries ten requests' events. Expiry rows go first, their chunks in parallel beside the events,
and holds due in the same second share one delayed SQS message. The scheduled sweep relays too,
so rows still go out if the relay function is down.

Rows are claimed with SKIP LOCKED, so relays on many instances never send the same row at the same
time; a crash after sending but before marking sends it again later, which is why consumers are
idempotent on the event id (at-least-once delivery). Events leave in outbox order, one relay at a
time (an advisory lock), stopping at the first failure: a reservation's events are written by
transactions that its row lock puts one after another, so its events leave in the order they
happened. Standard SNS/SQS may still reorder them on the way; consumers do not depend on order.

A row SNS or SQS refuses for good (`refused_for_good`: the sender's fault, such as an invalid
parameter; not a throttle or a network error) is parked: it gets `parked_at` and its
`last_error`, is logged and counted (`outbox_parked`), is never claimed again, and the rows
behind it go on in order. Parked rows wait for a human (see docs/security.md).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.aws import clients
from chalicelib.db import in_transaction
from chalicelib.domain.events import EXPIRY_DUE
from chalicelib.events import metrics
from chalicelib.log import logger
from chalicelib.settings import get_settings

SNS_BATCH = 10
SNS_MAX_BYTES = 256 * 1024  # one message, and a PublishBatch's messages together
SQS_BATCH = 10
MAX_SQS_DELAY = 900
BATCH_ROWS = 50  # events per round
HOLDS_PER_EXPIRY_MESSAGE = 100
EXPIRY_ROWS_PER_ROUND = SQS_BATCH * HOLDS_PER_EXPIRY_MESSAGE
POLL_S = 0.05
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
# The claim stays open while the chunks are sent (each call is bounded by the client's timeouts);
# the connection's default idle-in-transaction limit is for requests, not for this.
CLAIM_TIMEOUT = "60s"
EVENTS_RELAY_LOCK = 7_414_002  # pg_try_advisory_xact_lock key: the one relay sending events

_senders: ThreadPoolExecutor | None = None


def _sender_pool() -> ThreadPoolExecutor:
    global _senders
    if _senders is None:
        _senders = ThreadPoolExecutor(max_workers=4, thread_name_prefix="relay-send")
    return _senders


# Per-entry errors no retry can fix: the message itself is wrong. Only these park a row; anything
# else (a throttle, an internal error, a KMS or permission problem, which stops every row alike)
# leaves it queued for the next round.
PERMANENT_ENTRY_ERRORS = frozenset(
    {"InvalidParameter", "InvalidParameterValue", "InvalidMessageContents", "MessageTooLong"}
)


def refused_for_good(entry: dict[str, Any]) -> bool:
    """Whether a batch call's failed entry is permanent for that message."""
    return bool(entry.get("SenderFault")) and entry.get("Code") in PERMANENT_ENTRY_ERRORS


def _refusals(answer: dict[str, Any]) -> dict[str, str]:
    """A batch answer's entries refused for good: entry id -> SNS's or SQS's reason."""
    return {
        entry["Id"]: f"{entry.get('Code')}: {entry.get('Message', '')}"[:1000]
        for entry in answer.get("Failed", [])
        if refused_for_good(entry)
    }


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _event_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": str(row["id"]),
        "Message": json.dumps(row["body"]),
        "MessageAttributes": {
            "event_type": {"DataType": "String", "StringValue": row["event_type"]}
        },
    }


def _entry_bytes(entry: dict[str, Any]) -> int:
    """What SNS counts against its size limit: the message and its attributes."""
    size = len(entry["Message"].encode())
    for name, attribute in entry["MessageAttributes"].items():
        size += len(name) + len(attribute["DataType"]) + len(attribute["StringValue"].encode())
    return size


def _publish_plan(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]] | tuple[int, str]]:
    """The rows in outbox order as PublishBatch entry lists that SNS accepts (at most SNS_BATCH
    entries, SNS_MAX_BYTES together), and, in their place, (row id, why) for a row too large
    for any publish: refused for good without asking SNS (AWS refuses such a batch whole, with
    BatchRequestTooLong, which would stop every row behind it)."""
    batch: list[dict[str, Any]] = []
    batch_bytes = 0
    for row in rows:
        entry = _event_entry(row)
        size = _entry_bytes(entry)
        if size > SNS_MAX_BYTES:
            yield row["id"], f"MessageTooLong: {size} bytes; SNS takes at most {SNS_MAX_BYTES}"
            continue
        if len(batch) == SNS_BATCH or batch_bytes + size > SNS_MAX_BYTES:
            yield batch
            batch, batch_bytes = [], 0
        batch.append(entry)
        batch_bytes += size
    if batch:
        yield batch


def _send_events(entries: list[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
    """One PublishBatch: the ids that went out, and those refused for good with why."""
    answer = clients.client("sns").publish_batch(
        TopicArn=clients.events_topic_arn(), PublishBatchRequestEntries=entries
    )
    went = [int(entry["Id"]) for entry in answer.get("Successful", [])]
    return went, {int(row_id): error for row_id, error in _refusals(answer).items()}


def _expiry_messages(rows: list[dict[str, Any]]) -> list[tuple[datetime, list[int]]]:
    """Expiry rows due within the same whole second share one message: (the start of that
    second, outbox ids) per message, at most HOLDS_PER_EXPIRY_MESSAGE ids each. A flash sale's
    holds mostly run out within the same seconds, so this sends a few messages a second where one
    per hold would send hundreds."""
    by_second: dict[datetime, list[int]] = {}
    for row in rows:
        # The start of the second the hold runs out in: the message arrives up to a second
        # early, and the handler waits out the rest (handlers.expire_when_due).
        by_second.setdefault(row["deliver_at"].replace(microsecond=0), []).append(row["id"])
    return [
        (second, ids[i : i + HOLDS_PER_EXPIRY_MESSAGE])
        for second, ids in sorted(by_second.items())
        for i in range(0, len(ids), HOLDS_PER_EXPIRY_MESSAGE)
    ]


def delay_until(second: datetime, now: datetime) -> int:
    """SQS delays in whole seconds, rounded up so the message never comes before `second`; at
    most SQS's 900 s (the handler reschedules what is still not due)."""
    return min(MAX_SQS_DELAY, max(0, math.ceil((second - now).total_seconds())))


def _send_expiry_messages(
    messages: list[tuple[datetime, list[int]]], reservation_of: dict[int, str], now: datetime
) -> tuple[list[int], dict[int, str]]:
    """One SendMessageBatch (at most SQS_BATCH messages): the outbox ids that went out, and those
    whose message was refused for good, with why."""
    answer = clients.client("sqs").send_message_batch(
        QueueUrl=clients.queue_url(get_settings().expiry_queue_name),
        Entries=[
            {
                "Id": str(ids[0]),
                "MessageBody": json.dumps(
                    {"type": EXPIRY_DUE, "reservation_ids": [reservation_of[i] for i in ids]}
                ),
                "DelaySeconds": delay_until(second, now),
            }
            for second, ids in messages
        ],
    )
    sent = {entry["Id"] for entry in answer.get("Successful", [])}
    refused = _refusals(answer)
    return (
        [i for _, ids in messages if str(ids[0]) in sent for i in ids],
        {i: refused[str(ids[0])] for _, ids in messages if str(ids[0]) in refused for i in ids},
    )


def _send(rows: list[dict[str, Any]]) -> tuple[list[int], dict[int, str], list[Exception]]:
    """Expiry chunks in parallel, events in order beside them; the ids that went out, those
    refused for good (with why), and the failures."""
    claimed_at, claimed_on = rows[0]["now"], time.monotonic()

    def database_now() -> datetime:
        # Delays are worked out as each batch leaves, on the database's clock.
        return claimed_at + timedelta(seconds=time.monotonic() - claimed_on)

    expiring = [r for r in rows if r["destination"] == "expiry"]
    reservation_of = {row["id"]: row["body"]["reservation_id"] for row in expiring}
    events = [r for r in rows if r["destination"] == "events"]
    calls: list[Callable[[], tuple[list[int], dict[int, str]]]] = [
        lambda chunk=chunk: _send_expiry_messages(chunk, reservation_of, database_now())
        for chunk in _chunks(_expiry_messages(expiring), SQS_BATCH)
    ]
    if events:
        calls.append(lambda: _send_events_in_order(events))
    futures = [_sender_pool().submit(call) for call in calls]
    sent: list[int] = []
    parked: dict[int, str] = {}
    failures: list[Exception] = []
    for future in futures:
        try:
            went, refused = future.result()
        except _PartlySent as exc:
            went, refused = exc.sent, exc.parked
            failures.append(exc.error)
        except (BotoCoreError, ClientError) as exc:
            went, refused = [], {}
            failures.append(exc)
        sent += went
        parked.update(refused)
    return sent, parked, failures


class _PartlySent(Exception):
    def __init__(self, sent: list[int], parked: dict[int, str], error: Exception) -> None:
        super().__init__(repr(error))
        self.sent, self.parked, self.error = sent, parked, error


def _send_events_in_order(rows: list[dict[str, Any]]) -> tuple[list[int], dict[int, str]]:
    """Event batches one after another in outbox order, stopping at the first that fails (or at
    an entry SNS did not take and may take later), so that a reservation's later event never
    leaves before an earlier one that is still waiting. An entry refused for good is passed over
    (to be parked): it will never leave."""
    sent: list[int] = []
    parked: dict[int, str] = {}
    for step in _publish_plan(rows):
        if isinstance(step, tuple):
            row_id, why = step
            parked[row_id] = why
            continue
        try:
            went, refused = _send_events(step)
        except (BotoCoreError, ClientError) as exc:
            raise _PartlySent(sent, parked, exc) from exc
        # Keep only the unbroken run from the start of the batch.
        for row_id in (int(entry["Id"]) for entry in step):
            if row_id in refused:
                parked[row_id] = refused[row_id]
            elif row_id in went:
                sent.append(row_id)
            else:
                return sent, parked
    return sent, parked


def _claim(conn: psycopg.Connection, destination: str, limit: int) -> list[dict[str, Any]]:
    return conn.execute(
        """
        SELECT id, destination, event_type, body, deliver_at, now() AS now
          FROM outbox
         WHERE published_at IS NULL AND parked_at IS NULL AND destination = %s
         ORDER BY id
         LIMIT %s
           FOR UPDATE SKIP LOCKED
        """,
        (destination, limit),
    ).fetchall()


def _park(conn: psycopg.Connection, parked: dict[int, str]) -> None:
    """Rows refused for good leave the queue of rows to send, with the reason, for a human."""
    conn.execute(
        """
        UPDATE outbox SET parked_at = now(), last_error = refused.error
          FROM unnest(%s::bigint[], %s::text[]) AS refused(id, error)
         WHERE outbox.id = refused.id
        """,
        (list(parked), list(parked.values())),
    )
    logger.error(
        "outbox rows refused for good are parked",
        extra={"metric": "outbox_parked", "parked": len(parked), "errors": parked},
    )


def _relay_batch(conn: psycopg.Connection, limit: int) -> tuple[int, int]:
    """Claim up to `limit` unsent rows (skipping rows another relay holds), send them, mark the
    ones that went out and park the ones refused for good. Returns (claimed, sent), parked rows
    counted in neither: they are settled, not waiting."""
    conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{CLAIM_TIMEOUT}'")
    # Expiry rows first: their messages must leave before their holds run out, and they are
    # cheap (coalesced); events can wait for the next round. Expiry messages need no order, so
    # every relay sends them; events go out in outbox order, so one relay at a time sends them.
    rows = _claim(conn, "expiry", EXPIRY_ROWS_PER_ROUND)
    if conn.execute(
        "SELECT pg_try_advisory_xact_lock(%s) AS mine", (EVENTS_RELAY_LOCK,)
    ).fetchone()["mine"]:
        rows += _claim(conn, "events", limit)
    if not rows:
        return 0, 0
    sent, parked, failures = _send(rows)
    if failures:
        logger.warning(
            "could not publish outbox rows; they stay queued for the next round",
            extra={"error": repr(failures[0]), "pending": len(rows) - len(sent) - len(parked)},
        )
    if parked:
        _park(conn, parked)
    conn.execute(
        """
        UPDATE outbox
           SET published_at = CASE WHEN id = ANY(%(sent)s::bigint[]) THEN now() END,
               attempts = attempts + 1
         WHERE id = ANY(%(all)s::bigint[])
        """,
        {"sent": sent, "all": [r["id"] for r in rows]},
    )
    return len(rows) - len(parked), len(sent)


def relay_batch(limit: int = BATCH_ROWS) -> tuple[int, int]:
    """One batch in its own transaction: (claimed, sent)."""
    return in_transaction(lambda conn: _relay_batch(conn, limit))


def publish_backlog(time_budget_s: float = 10.0) -> int:
    """Send what is unsent now, batch after batch, until nothing is left, a batch fails, or the
    time is up (the sweep, and tests). Returns how many rows went out."""
    total = 0
    deadline = time.monotonic() + time_budget_s
    while time.monotonic() < deadline:
        claimed, sent = relay_batch()
        total += sent
        if claimed == 0 or sent < claimed:
            break
    return total


def run(keep_going: Callable[[], bool], sleep: Callable[[float], Any] = time.sleep) -> int:
    """The relay function's loop: send batches while there are rows, poll every POLL_S when there
    are none, back off while AWS or PostgreSQL fail. Returns how many rows went out."""
    total = 0
    failures = 0
    report_outbox_age = metrics.OutboxAgeReporter()
    while keep_going():
        report_outbox_age()
        try:
            claimed, sent = relay_batch()
        except Exception as exc:  # PostgreSQL down or restarting: keep the loop alive
            logger.warning("outbox relay round failed", extra={"error": repr(exc)})
            claimed, sent = 1, 0
        total += sent
        if sent < claimed:
            sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
            failures += 1
            continue
        failures = 0
        if claimed < BATCH_ROWS:
            sleep(POLL_S)
    return total
