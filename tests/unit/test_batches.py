"""How a queue batch handled in one call isolates a poison message (the expiry and analytics
queues): the handler replaced by a script, the SQS deletions recorded. The same with real
messages, PostgreSQL and SQS is in tests/integration/test_events.py."""

from __future__ import annotations

import json
import uuid

import pytest

from chalicelib.db import DatabaseUnavailable
from chalicelib.events import handlers
from tests.support.sqs import sqs_record as record


@pytest.fixture
def deleted(monkeypatch) -> list[str]:
    """Receipt handles the handler deletes from the queue."""
    gone: list[str] = []

    class FakeSQS:
        def delete_message_batch(self, QueueUrl, Entries):
            gone.extend(e["ReceiptHandle"] for e in Entries)

    monkeypatch.setattr(handlers.clients, "client", lambda service: FakeSQS())
    monkeypatch.setattr(handlers.clients, "queue_url", lambda name: "queue")
    return gone


def expiry(*ids: str) -> str:
    return json.dumps({"reservation_ids": list(ids)})


def test_an_expiry_message_the_batch_call_chokes_on_fails_alone(monkeypatch, deleted):
    poison = str(uuid.uuid4())
    good = [str(uuid.uuid4()) for _ in range(3)]
    calls: list[list[str]] = []

    def expire_when_due(ids: list[str]) -> None:
        calls.append(ids)
        if poison in ids:
            raise RuntimeError("something about this hold breaks the transaction")

    monkeypatch.setattr(handlers, "expire_when_due", expire_when_due)
    batch = [record(expiry(good[0])), record(expiry(poison, good[1])), record(expiry(good[2]))]
    with pytest.raises(handlers.BatchFailed, match="1 of 3"):
        handlers.expire_batch(batch)
    assert calls[0] == [good[0], poison, good[1], good[2]]  # one call first
    assert calls[1:] == [[good[0]], [poison, good[1]], [good[2]]]  # then one by one
    assert deleted == [batch[0].receipt_handle, batch[2].receipt_handle]


def test_an_unreachable_database_fails_the_whole_batch_at_once(monkeypatch, deleted):
    calls: list[list[str]] = []

    def expire_when_due(ids: list[str]) -> None:
        calls.append(ids)
        raise DatabaseUnavailable("the database is not reachable; retry shortly")

    monkeypatch.setattr(handlers, "expire_when_due", expire_when_due)
    with pytest.raises(DatabaseUnavailable):
        handlers.expire_batch([record(expiry(str(uuid.uuid4()))) for _ in range(3)])
    assert len(calls) == 1 and deleted == []  # SQS delivers the batch again later
