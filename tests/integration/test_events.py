"""The event pipeline against a real AWS-compatible HTTP endpoint (moto server, or LocalStack with
`make test-localstack`): outbox → SNS → SQS subscribers, the expiry delay queue, DLQs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.aws import clients
from chalicelib.events import handlers, relay
from chalicelib.settings import get_settings
from tests.support.data import move_hold_end
from tests.support.sqs import deliver

WAIT_S = 20  # LocalStack's delays run about a second long; leave slack


def eventually(check: Callable[[], Any], timeout: float = WAIT_S, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {check.__doc__ or check}")
        time.sleep(every)


@pytest.fixture
def event_runner(app_module, monkeypatch) -> Iterator[None]:
    """The local stand-in for Lambda's event source mappings, as `make run` starts it."""
    from devtools.event_runner import EventRunner

    monkeypatch.setenv("LOCAL_SCHEDULE_SECONDS", "1")
    stop = threading.Event()
    runner = EventRunner(app_module, stop_event=stop)
    runner.start()
    yield
    stop.set()
    runner.join(timeout=15)


def drain(queue_name: str, wait: float = 1.0) -> list[Any]:
    """Every message now in a queue (received, then deleted), bodies parsed; a body that is not
    JSON (a poison message an earlier test left to come back) as its text."""
    sqs = clients.client("sqs")
    url = clients.queue_url(queue_name)
    bodies: list[Any] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        for message in got.get("Messages", []):
            try:
                bodies.append(json.loads(message["Body"]))
            except ValueError:
                bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if not got.get("Messages"):
            time.sleep(0.1)
    return bodies


@pytest.fixture
def quiet_queues() -> None:
    """Empty the queues a test reads (PurgeQueue is allowed once a minute, so receive-delete)."""
    settings = get_settings()
    for name in (
        settings.notifications_queue_name,
        settings.analytics_queue_name,
        settings.expiry_queue_name,
    ):
        drain(name, wait=0.3)


def sent_and_received(sqs: Any, url: str, bodies: list[str]) -> list[dict[str, Any]]:
    """Send these bodies and receive them back, hidden for 1 s (a handler's batch to be)."""
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages: list[dict[str, Any]] = []
    while len(messages) < len(bodies):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)
        messages += got.get("Messages", [])
    return messages


def hold(client, customer, session_id, seats):
    answer = client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"]
    )
    assert answer.status == 201, answer.body
    return answer.body


@pytest.mark.usefixtures("quiet_queues", "outbox_relay")
def test_payment_event_reaches_both_subscribers(client, customer, make_session, db):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1", "A2"])
    sale = client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"]).body
    settings = get_settings()

    notifications = drain(settings.notifications_queue_name, wait=2)
    assert [e["type"] for e in notifications] == ["payment.confirmed"]
    event = notifications[0]
    assert event["version"] == 1 and uuid.UUID(event["id"]) and event["occurred_at"]
    assert event["payload"]["sale_id"] == sale["id"]
    assert event["payload"]["amount_cents"] == 5000

    analytics = drain(settings.analytics_queue_name, wait=2)
    assert [e["type"] for e in analytics] == ["payment.confirmed"]
    unsent = db.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").fetchone()
    assert unsent["n"] == 0


@pytest.mark.usefixtures("quiet_queues", "event_runner")
def test_receipt_and_stats_recorded_by_subscribers(client, customer, manager, make_session):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1", "A2"])
    sale = client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"]).body

    def receipt():
        """a receipt for the sale"""
        return client.get("/me/receipts", token=customer["token"]).body["items"]

    items = eventually(receipt)
    assert len(items) == 1 and items[0]["sale_id"] == sale["id"]
    assert items[0]["amount_cents"] == 5000 and items[0]["reservation_id"] == reservation["id"]

    def sold():
        """stats count the sale"""
        body = client.get(f"/sessions/{session['id']}/stats", token=manager["token"]).body
        return body if body["sold_seats"] == 2 else None

    stats = eventually(sold)
    assert stats == {
        "session_id": session["id"],
        "sold_seats": 2,
        "revenue_cents": 5000,
        "expired_reservations": 0,
        "released_seats": 0,
    }
    assert client.get(f"/sessions/{session['id']}/stats", token=customer["token"]).status == 403


@pytest.mark.usefixtures("quiet_queues", "event_runner")
def test_hold_expires_through_the_delay_queue(
    client, customer, manager, make_session, db, hold_seconds
):
    hold_seconds(2)
    session = make_session()
    reservation = hold(client, customer, session["id"], ["B1", "B2", "B3"])

    def expiry_sent():
        """the relay sent the expiry message before the hold ran out"""
        row = db.execute(
            """
            SELECT published_at < (SELECT expires_at FROM reservations) AS in_time
              FROM outbox WHERE destination = 'expiry' AND published_at IS NOT NULL
            """
        ).fetchone()
        return row is not None and row["in_time"]

    eventually(expiry_sent)

    def expired():
        """the reservation row is EXPIRED"""
        row = db.execute(
            "SELECT status FROM reservations WHERE id = %s", (reservation["id"],)
        ).fetchone()
        return row["status"] == "EXPIRED"

    eventually(expired)
    held = db.execute("SELECT count(*) AS n FROM seats WHERE hold_id IS NOT NULL").fetchone()
    assert held["n"] == 0

    def counted():
        """stats count the expiry and the released seats"""
        body = client.get(f"/sessions/{session['id']}/stats", token=manager["token"]).body
        return body if body["released_seats"] == 3 else None

    stats = eventually(counted)
    assert stats["expired_reservations"] == 1 and stats["sold_seats"] == 0


def test_expiry_message_early_late_twice_or_after_payment_is_harmless(
    client, customer, make_session, db
):
    session = make_session()
    paid = hold(client, customer, session["id"], ["A1"])
    client.post(f"/reservations/{paid['id']}/payment", token=customer["token"])
    pending = hold(client, customer, session["id"], ["A2"])

    for reservation_id in (paid["id"], pending["id"], pending["id"]):
        deliver(handlers.expire_batch, json.dumps({"reservation_id": reservation_id}))
    statuses = {
        r["id"]: r["status"] for r in db.execute("SELECT id::text AS id, status FROM reservations")
    }
    assert statuses == {paid["id"]: "CONFIRMED", pending["id"]: "PENDING"}
    assert (
        db.execute("SELECT count(*) AS n FROM seats WHERE sale_id IS NOT NULL").fetchone()["n"] == 1
    )

    move_hold_end(db, pending["id"], -timedelta(seconds=1))
    for _ in range(2):  # late, then a duplicate
        deliver(handlers.expire_batch, json.dumps({"reservation_id": pending["id"]}))
    events = db.execute(
        "SELECT event_type FROM outbox WHERE aggregate_id = %s AND destination = 'events' "
        "ORDER BY id",
        (pending["id"],),
    ).fetchall()
    assert [e["event_type"] for e in events] == [
        "reservation.created",
        "reservation.expired",
        "seats.released",
    ]


def received_batch(queue_name: str, bodies: list[str]) -> Any:
    """These bodies sent to a real queue and received back as one Lambda SQS batch (receipt
    handles that a handler can delete), with a 1 s visibility timeout."""
    from chalice.app import SQSEvent

    from devtools.event_runner import sqs_event

    sqs = clients.client("sqs")
    url = clients.queue_url(queue_name)
    messages = sent_and_received(sqs, url, bodies)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    by_body = {m["Body"]: m for m in messages}
    return SQSEvent(sqs_event([by_body[b] for b in bodies], arn["QueueArn"]), None)


def returned_after_visibility(queue_name: str) -> list[str]:
    time.sleep(1.2)
    got = clients.client("sqs").receive_message(
        QueueUrl=clients.queue_url(queue_name), MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    return sorted(m["Body"] for m in got.get("Messages", []))


@pytest.mark.usefixtures("quiet_queues")
def test_expiry_batch_is_one_transaction_and_a_poison_message_fails_alone(
    client, customer, make_session, db
):
    """A batch from the expiry queue: two due holds in one message, one early, a duplicate and a
    message that is not an expiry message. The due ones expire, the early one gets a new
    message, the good records are deleted from the queue, and only the bad one is left for
    redelivery."""
    session = make_session()
    due = [hold(client, customer, session["id"], [seat])["id"] for seat in ("B1", "B2")]
    early = hold(client, customer, session["id"], ["B3"])["id"]
    move_hold_end(db, due, -timedelta(seconds=1))
    bodies = [
        json.dumps({"reservation_ids": due}),  # as the relay sends holds due in the same second
        json.dumps({"reservation_id": early}),
        json.dumps({"reservation_id": due[0]}),
        "not json",
    ]
    expiry = get_settings().expiry_queue_name
    event = received_batch(expiry, bodies)

    with pytest.raises(handlers.BatchFailed, match="1 of 4"):
        handlers.expire_batch(event)

    statuses = {
        r["id"]: r["status"] for r in db.execute("SELECT id::text AS id, status FROM reservations")
    }
    assert statuses == {due[0]: "EXPIRED", due[1]: "EXPIRED", early: "PENDING"}
    assert db.execute("SELECT count(*) AS n FROM seats WHERE hold_id IS NOT NULL").fetchone() == {
        "n": 1
    }
    rescheduled = db.execute(
        "SELECT count(*) AS n FROM outbox WHERE destination = 'expiry' AND aggregate_id = %s",
        (early,),
    ).fetchone()
    assert rescheduled["n"] == 2  # the hold's own message, and the one for the time left
    assert returned_after_visibility(expiry) == ["not json"]  # what was not deleted returns


@pytest.mark.usefixtures("quiet_queues")
def test_on_aws_a_batch_reports_its_failed_messages_and_deletes_nothing(app_module, monkeypatch):
    """With SQS_REPORT_BATCH_ITEM_FAILURES (the template sets it together with the event
    source's ReportBatchItemFailures) the Chalice handler answers Lambda with the ids of the
    messages that failed; Lambda deletes the others, so the handler deletes nothing itself."""
    monkeypatch.setenv("SQS_REPORT_BATCH_ITEM_FAILURES", "true")
    get_settings.cache_clear()
    sqs = clients.client("sqs")
    url = clients.queue_url(get_settings().notifications_queue_name)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    not_a_sale = {"id": str(uuid.uuid4()), "type": "reservation.created", "payload": {}}
    bodies = [json.dumps({**not_a_sale, "id": str(uuid.uuid4())}) for _ in range(3)]
    bodies.insert(1, "not json")
    messages = sent_and_received(sqs, url, bodies)
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn["QueueArn"],
            }
            for m in messages
        ]
    }
    poison = [m["MessageId"] for m in messages if m["Body"] == "not json"]

    answer = app_module.send_receipts(event, None)

    assert answer == {"batchItemFailures": [{"itemIdentifier": poison[0]}]}
    time.sleep(1.2)  # the visibility timeout runs out: nothing was deleted here

    def all_returned() -> list[str]:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            returned.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return sorted(returned) == sorted(bodies)

    returned: list[str] = []
    eventually(all_returned)
    monkeypatch.delenv("SQS_REPORT_BATCH_ITEM_FAILURES")
    get_settings.cache_clear()
    assert app_module.send_receipts({"Records": []}, None) == {"batchItemFailures": []}


def test_an_expiry_message_up_to_a_second_early_is_waited_out_not_rescheduled(
    client, customer, make_session, db
):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["B4"])
    move_hold_end(db, reservation["id"], timedelta(milliseconds=600))
    deliver(handlers.expire_batch, json.dumps({"reservation_ids": [reservation["id"]]}))
    row = db.execute(
        "SELECT status, closed_at - expires_at AS late FROM reservations WHERE id = %s",
        (reservation["id"],),
    ).fetchone()
    assert row["status"] == "EXPIRED"
    assert timedelta(0) <= row["late"] < timedelta(milliseconds=500)
    expiry_rows = db.execute(
        "SELECT count(*) AS n FROM outbox WHERE destination = 'expiry' AND aggregate_id = %s",
        (reservation["id"],),
    ).fetchone()
    assert expiry_rows["n"] == 1  # only the hold's own: nothing was rescheduled


def test_duplicate_delivery_has_one_effect(customer, make_session, client, db):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1"])
    client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"])
    body = db.execute("SELECT body FROM outbox WHERE event_type = 'payment.confirmed'").fetchone()[
        "body"
    ]
    message = json.dumps(body)
    for _ in range(3):
        deliver(handlers.receipt_batch, message)
        deliver(handlers.count_batch, message)
    assert db.execute("SELECT count(*) AS n FROM receipts").fetchone()["n"] == 1
    stats = db.execute("SELECT sold_seats, revenue_cents FROM session_stats").fetchone()
    assert stats == {"sold_seats": 1, "revenue_cents": 2500}


def test_analytics_batch_counts_each_event_once_per_session(customer, make_session, client, db):
    """One SQS batch with two sales of one session, a sale of another, an expiry, a duplicate
    within the batch and, in a second batch, redeliveries: every event counts exactly once."""
    from types import SimpleNamespace

    first, second = make_session(), make_session()
    for session, seat in ((first, "A1"), (first, "A2"), (second, "A1")):
        held = hold(client, customer, session["id"], [seat])
        client.post(f"/reservations/{held['id']}/payment", token=customer["token"])
    late = hold(client, customer, first["id"], ["B1", "B2"])
    move_hold_end(db, late["id"], -timedelta(seconds=1))
    deliver(handlers.expire_batch, json.dumps({"reservation_id": late["id"]}))
    bodies = [
        json.dumps(row["body"])
        for row in db.execute("SELECT body FROM outbox WHERE destination = 'events' ORDER BY id")
    ]
    records = [SimpleNamespace(body=body) for body in bodies]

    assert handlers.count_batch(records + records[:2]) == len(records) + 2
    assert handlers.count_batch(records) == len(records)  # redelivered: nothing new

    stats = {
        str(r["session_id"]): r
        for r in db.execute(
            "SELECT session_id, sold_seats, revenue_cents, expired_reservations, released_seats"
            " FROM session_stats"
        )
    }
    assert stats[first["id"]] == {
        "session_id": uuid.UUID(first["id"]),
        "sold_seats": 2,
        "revenue_cents": 5000,
        "expired_reservations": 1,
        "released_seats": 2,
    }
    assert (stats[second["id"]]["sold_seats"], stats[second["id"]]["revenue_cents"]) == (1, 2500)


def test_rows_left_by_a_dead_relay_are_sent_by_the_sweep(
    client, customer, make_session, db, quiet_queues
):
    """Requests only commit their outbox rows; with no relay running (as if it died), the
    sweep sends every row later, and none is lost."""
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1"])
    client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"])
    unsent = db.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").fetchone()
    assert unsent["n"] == 3  # created, expiry due, payment confirmed

    assert handlers.sweep()["published"] == 3
    assert (
        db.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").fetchone()["n"]
        == 0
    )
    analytics = drain(get_settings().analytics_queue_name, wait=2)
    assert [e["type"] for e in analytics] == ["payment.confirmed"]


def test_aws_endpoint_down_keeps_selling_and_events_wait(
    client, customer, make_session, db, monkeypatch, quiet_queues
):
    session = make_session()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clients.reset()
    reservation = hold(client, customer, session["id"], ["A1"])
    sale = client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"])
    assert sale.status == 200
    assert (
        db.execute("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL").fetchone()["n"]
        == 3
    )
    assert relay.relay_batch() == (3, 0)
    monkeypatch.undo()
    clients.reset()
    assert handlers.sweep()["published"] == 3
    notifications = drain(get_settings().notifications_queue_name, wait=2)
    assert [e["payload"]["sale_id"] for e in notifications] == [sale.body["id"]]


@pytest.fixture
def short_visibility() -> Iterator[str]:
    """A 1 s visibility timeout on the notifications queue, set before the runner polls it (an
    emulator fixes a message's timeout when the receive starts)."""
    settings = get_settings()
    url = clients.queue_url(settings.notifications_queue_name)
    clients.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    yield url
    clients.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})


def test_poison_message_lands_in_the_dlq(short_visibility, event_runner):
    dead_letters = f"{get_settings().notifications_queue_name}-dlq"
    drain(dead_letters, wait=0.3)
    clients.client("sqs").send_message(QueueUrl=short_visibility, MessageBody="not an event")

    def dead_lettered():
        """the poison message is in the DLQ after 5 failed receives"""
        return _peek(dead_letters)

    assert eventually(dead_lettered, timeout=40) == ["not an event"]


def _peek(queue_name: str) -> list[str]:
    got = clients.client("sqs").receive_message(
        QueueUrl=clients.queue_url(queue_name), MaxNumberOfMessages=10, VisibilityTimeout=0
    )
    return [m["Body"] for m in got.get("Messages", [])]


# --- poison messages never take good ones with them; dead letters can be sent back -------------


@pytest.mark.usefixtures("quiet_queues")
def test_a_poison_event_in_an_analytics_batch_fails_alone(client, customer, make_session, db):
    """Good events counted and deleted from the queue; an event that cannot be counted (a
    payload without seats) and one the database refuses (revenue beyond bigint) fail alone."""
    session = make_session()
    held = hold(client, customer, session["id"], ["A1", "A2"])
    client.post(f"/reservations/{held['id']}/payment", token=customer["token"])
    cancelled = hold(client, customer, session["id"], ["B1"])
    client.delete(f"/reservations/{cancelled['id']}", token=customer["token"])
    good = [
        json.dumps(row["body"])
        for row in db.execute(
            "SELECT body FROM outbox WHERE event_type IN ('payment.confirmed', 'seats.released')"
            " ORDER BY id"
        )
    ]
    paid = json.loads(good[0])
    no_seats = json.dumps(
        {**paid, "id": str(uuid.uuid4()), "payload": {"session_id": session["id"]}}
    )
    overflow = json.dumps(
        {
            **paid,
            "id": str(uuid.uuid4()),
            "payload": {**paid["payload"], "amount_cents": 2**63},
        }
    )
    analytics = get_settings().analytics_queue_name
    batch = received_batch(analytics, [good[0], no_seats, overflow, good[1]])

    with pytest.raises(handlers.BatchFailed, match="2 of 4"):
        handlers.count_batch(batch)

    stats = db.execute(
        "SELECT sold_seats, revenue_cents, released_seats FROM session_stats"
    ).fetchall()
    assert stats == [{"sold_seats": 2, "revenue_cents": 5000, "released_seats": 1}]
    assert returned_after_visibility(analytics) == sorted([no_seats, overflow])


@pytest.mark.usefixtures("quiet_queues")
def test_a_poison_event_in_a_notifications_batch_fails_alone(client, customer, make_session, db):
    session = make_session()
    held = hold(client, customer, session["id"], ["A1"])
    client.post(f"/reservations/{held['id']}/payment", token=customer["token"])
    good = json.dumps(
        db.execute("SELECT body FROM outbox WHERE event_type = 'payment.confirmed'").fetchone()[
            "body"
        ]
    )
    bad = json.dumps({**json.loads(good), "id": str(uuid.uuid4()), "payload": {}})
    notifications = get_settings().notifications_queue_name
    batch = received_batch(notifications, [bad, good])

    with pytest.raises(handlers.BatchFailed, match="1 of 2"):
        handlers.receipt_batch(batch)

    assert db.execute("SELECT count(*) AS n FROM receipts").fetchone()["n"] == 1
    assert returned_after_visibility(notifications) == [bad]


def _empty(queue_name: str) -> None:
    sqs = clients.client("sqs")
    url = clients.queue_url(queue_name)
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _dead_letter(queue_name: str, bodies: list[str]) -> None:
    sqs = clients.client("sqs")
    url = clients.queue_url(f"{queue_name}-dlq")
    for body in bodies:
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": "x"}},
        )


def test_redrive_sends_dead_letters_back_to_their_queue(
    client, customer, make_session, db, quiet_queues, capsys
):
    """A payment event dead-lettered (as during a long database outage) goes back to the
    notifications queue with `python -m chalicelib.admin redrive`, and its receipt is then
    recorded; --max bounds how many move."""
    from chalicelib import admin

    session = make_session()
    held = hold(client, customer, session["id"], ["A1"])
    sale = client.post(f"/reservations/{held['id']}/payment", token=customer["token"]).body
    event = json.dumps(
        db.execute("SELECT body FROM outbox WHERE event_type = 'payment.confirmed'").fetchone()[
            "body"
        ]
    )
    notifications = get_settings().notifications_queue_name
    _empty(f"{notifications}-dlq")
    _dead_letter(notifications, [event, "second", "third"])

    assert admin.main(["redrive", "--queue", "notifications", "--max", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == {"queue": "notifications", "moved": 1}
    assert admin.main(["redrive", "--queue", "notifications"]) == 0
    assert json.loads(capsys.readouterr().out) == {"queue": "notifications", "moved": 2}
    assert _peek(f"{notifications}-dlq") == []

    sqs = clients.client("sqs")
    url = clients.queue_url(notifications)
    back: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while len(back) < 3 and time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        back += got.get("Messages", [])
    assert sorted(m["Body"] for m in back) == sorted([event, "second", "third"])
    assert all(m["MessageAttributes"]["event_type"]["StringValue"] == "x" for m in back)
    deliver(handlers.receipt_batch, next(m["Body"] for m in back if m["Body"] == event))
    receipts = client.get("/me/receipts", token=customer["token"]).body["items"]
    assert [r["sale_id"] for r in receipts] == [sale["id"]]


def test_redrive_names_only_known_queues(capsys):
    from chalicelib import admin

    with pytest.raises(SystemExit):
        admin.main(["redrive", "--queue", "receipts"])
    with pytest.raises(SystemExit):
        admin.main(["redrive", "--queue", "analytics", "--max", "0"])


def test_a_row_sns_refuses_for_good_is_parked_and_the_rest_go_on(
    client, customer, make_session, db, quiet_queues
):
    """An event SNS would refuse for good (here: over SNS's 256 KiB, which AWS and LocalStack
    refuse as a whole batch, BatchRequestTooLong) between two good ones: it is parked with why,
    without being sent, the events after it still leave, in order, and it is never sent again."""
    from psycopg.types.json import Jsonb

    session = make_session()
    held = hold(client, customer, session["id"], ["A1"])
    db.execute(
        """
        INSERT INTO outbox (event_id, destination, event_type, aggregate_id, body)
        VALUES (%s, 'events', 'payment.confirmed', %s, %s)
        """,
        (str(uuid.uuid4()), held["id"], Jsonb({"padding": "x" * 300_000})),
    )
    sale = client.post(f"/reservations/{held['id']}/payment", token=customer["token"]).body

    assert relay.publish_backlog() == 3  # created, expiry due, payment confirmed
    rows = db.execute(
        "SELECT event_type, published_at IS NOT NULL AS sent, parked_at IS NOT NULL AS parked,"
        " last_error FROM outbox ORDER BY id"
    ).fetchall()
    assert [(r["event_type"], r["sent"], r["parked"]) for r in rows] == [
        ("reservation.created", True, False),
        ("reservation.expiry_due", True, False),
        ("payment.confirmed", False, True),
        ("payment.confirmed", True, False),
    ]
    assert rows[2]["last_error"].startswith("MessageTooLong")
    analytics = drain(get_settings().analytics_queue_name, wait=2)
    assert [e["payload"]["sale_id"] for e in analytics] == [sale["id"]]
    assert relay.relay_batch() == (0, 0)  # the parked row is not claimed again
