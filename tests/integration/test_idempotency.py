"""Idempotency-Key on holds and payments, on a real Redis."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.db import DatabaseUnavailable
from chalicelib.services import reservations
from chalicelib.web import idempotency


@pytest.fixture(autouse=True, scope="module")
def forget_kept_answers():
    """Kept answers live 24 h; the last test's must not outlive this run in the shared Redis."""
    yield
    from chalicelib.cache import redis_client

    keys = list(redis_client().scan_iter(match=f"{os.environ['REDIS_PREFIX']}*", count=1000))
    if keys:
        redis_client().delete(*keys)


def hold(client, customer, session_id, seats, key=None):
    return client.post(
        "/reservations",
        {"session_id": session_id, "seats": seats},
        token=customer["token"],
        headers={"Idempotency-Key": key} if key is not None else None,
    )


def pay(client, customer, reservation_id, key=None):
    return client.post(
        f"/reservations/{reservation_id}/payment",
        token=customer["token"],
        headers={"Idempotency-Key": key} if key is not None else None,
    )


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


@pytest.mark.slow
def test_50_concurrent_identical_holds_make_one_reservation(client, customer, make_session, db):
    session = make_session()
    requests = 50
    barrier = threading.Barrier(requests)

    def send(_):
        barrier.wait(timeout=10)
        return hold(client, customer, session["id"], ["A1", "A2"], key="click-1")

    with ThreadPoolExecutor(requests) as pool:
        answers = list(pool.map(send, range(requests)))
    assert {a.status for a in answers} == {201}, [a.body for a in answers if a.status != 201]
    assert len({a.body["id"] for a in answers}) == 1
    assert all(a.body == answers[0].body for a in answers)
    assert count(db, "reservations") == 1


def test_a_retry_after_success_gets_the_same_answer(client, customer, make_session, db):
    session = make_session()
    first = hold(client, customer, session["id"], ["A1"], key="k-1")
    again = hold(client, customer, session["id"], ["A1"], key="k-1")
    assert first.status == again.status == 201
    assert again.body == first.body
    assert count(db, "reservations") == 1

    sale = pay(client, customer, first.body["id"], key="pay-1")
    sale_again = pay(client, customer, first.body["id"], key="pay-1")
    assert sale.status == sale_again.status == 200
    assert sale_again.body == sale.body
    assert count(db, "sales") == 1


def test_same_json_written_differently_is_the_same_request(client, customer, make_session):
    session = make_session()
    first = client.request(
        "POST",
        "/reservations",
        raw=f'{{"session_id": "{session["id"]}", "seats": ["A1"]}}'.encode(),
        token=customer["token"],
        headers={"Idempotency-Key": "spacing"},
    )
    again = client.request(
        "POST",
        "/reservations",
        raw=f'{{"seats":["A1"],"session_id":"{session["id"]}"}}'.encode(),
        token=customer["token"],
        headers={"Idempotency-Key": "spacing"},
    )
    assert first.status == again.status == 201 and again.body["id"] == first.body["id"]


def test_a_key_reused_for_another_request_is_422(client, customer, make_session, db):
    session = make_session()
    first = hold(client, customer, session["id"], ["A1"], key="k-2")
    assert first.status == 201
    other_seats = hold(client, customer, session["id"], ["A2"], key="k-2")
    assert other_seats.status == 422 and other_seats.code == "IdempotencyKeyReused"
    on_payment = pay(client, customer, first.body["id"], key="k-2")
    assert on_payment.status == 422 and on_payment.code == "IdempotencyKeyReused"
    assert count(db, "reservations") == 1 and count(db, "sales") == 0

    second = hold(client, customer, session["id"], ["A3"]).body
    assert pay(client, customer, first.body["id"], key="pay-k").status == 200
    elsewhere = pay(client, customer, second["id"], key="pay-k")
    assert elsewhere.status == 422 and elsewhere.code == "IdempotencyKeyReused"


def test_keys_belong_to_one_user(client, make_user, make_session):
    session = make_session()
    first, second = make_user(), make_user()
    mine = hold(client, first, session["id"], ["A1"], key="shared")
    theirs = hold(client, second, session["id"], ["A2"], key="shared")
    assert mine.status == theirs.status == 201
    assert mine.body["id"] != theirs.body["id"]


def test_a_refusal_is_kept_and_replayed(client, make_user, make_session):
    session = make_session()
    first, second = make_user(), make_user()
    taken = hold(client, first, session["id"], ["A1"]).body
    refused = hold(client, second, session["id"], ["A1"], key="k-3")
    assert refused.status == 409 and refused.code == "SeatUnavailable"

    client.delete(f"/reservations/{taken['id']}", token=first["token"])  # A1 is free now
    again = hold(client, second, session["id"], ["A1"], key="k-3")
    assert again.status == 409 and again.body == refused.body
    assert hold(client, second, session["id"], ["A1"], key="k-4").status == 201


def test_a_5xx_is_not_kept(client, customer, make_session, db, monkeypatch):
    session = make_session()
    real = reservations.hold_seats
    calls = []

    def down_once(**kw):
        calls.append(1)
        if len(calls) == 1:
            raise DatabaseUnavailable("the database is not reachable; retry shortly")
        return real(**kw)

    monkeypatch.setattr(reservations, "hold_seats", down_once)
    failed = hold(client, customer, session["id"], ["A1"], key="k-5")
    assert failed.status == 503 and failed.code == "ServiceUnavailable"
    retried = hold(client, customer, session["id"], ["A1"], key="k-5")
    assert retried.status == 201
    assert count(db, "reservations") == 1


def test_a_repeat_while_the_first_runs_waits_then_409(
    client, customer, make_session, db, monkeypatch
):
    session = make_session()
    monkeypatch.setattr(idempotency, "WAIT_FOR_FIRST_S", 0.3)
    real = reservations.hold_seats
    release = threading.Event()

    def slow_hold(**kw):
        release.wait(timeout=10)
        return real(**kw)

    monkeypatch.setattr(reservations, "hold_seats", slow_hold)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(hold, client, customer, session["id"], ["A1"], "k-6")
        time.sleep(0.1)  # the first holds the key now
        started = time.monotonic()
        repeat = hold(client, customer, session["id"], ["A1"], key="k-6")
        waited = time.monotonic() - started
        assert repeat.status == 409 and repeat.code == "IdempotencyKeyInProgress"
        assert waited >= 0.3
        different = hold(client, customer, session["id"], ["A2"], key="k-6")
        assert different.status == 422  # a different request is refused without waiting
        release.set()
        first = first.result()
    assert first.status == 201
    assert hold(client, customer, session["id"], ["A1"], key="k-6").body == first.body
    assert count(db, "reservations") == 1


@pytest.mark.parametrize("bad", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_an_invalid_key_is_400(client, customer, make_session, db, bad):
    session = make_session()
    answer = hold(client, customer, session["id"], ["A1"], key=bad)
    assert answer.status == 400 and answer.code == "ValidationError"
    assert count(db, "reservations") == 0


def test_longest_and_oddest_valid_keys_work(client, customer, make_session):
    session = make_session()
    for i, key in enumerate(["k" * 255, " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"]):
        first = hold(client, customer, session["id"], [f"A{i + 1}"], key=key)
        assert first.status == 201
        assert hold(client, customer, session["id"], [f"A{i + 1}"], key=key).body == first.body


# --- what is kept, and how much -------------------------------------------------------------


def kept_records(customer) -> list[bytes]:
    from chalicelib.cache import key, redis_client

    pattern = key("idempotency", customer["id"], "*")
    return list(redis_client().scan_iter(match=pattern, count=1000))


def test_a_404_for_a_random_id_stores_nothing(client, customer, make_session):
    session = make_session()
    for i in range(3):
        answer = pay(client, customer, str(uuid.uuid4()), key=f"random-{i}")
        assert answer.status == 404 and answer.code == "NotFound"
    unknown_seat = hold(client, customer, session["id"], ["Z9"], key="bad-seat")
    assert unknown_seat.status == 404
    assert kept_records(customer) == []
    # The same key then serves a real request.
    assert hold(client, customer, session["id"], ["A1"], key="bad-seat").status == 201
    assert len(kept_records(customer)) == 1


def test_refusals_worth_replaying_are_kept(client, customer, make_user, make_session, db):
    session = make_session()
    other = make_user()
    hold(client, other, session["id"], ["A1"])
    assert hold(client, customer, session["id"], ["A1"], key="taken").code == "SeatUnavailable"
    mine = hold(client, customer, session["id"], ["A2"]).body
    client.delete(f"/reservations/{mine['id']}", token=customer["token"])
    assert pay(client, customer, mine["id"], key="cancelled").code == "InvalidState"
    assert len(kept_records(customer)) == 2


def test_live_records_per_user_are_capped(client, customer, make_user, make_session, monkeypatch):
    """Beyond MAX_RECORDS_PER_USER live records a key is not kept: the request runs, and a repeat
    runs again (here: the seat it took is then taken). Others are not affected, and a record
    that expires frees its place."""
    monkeypatch.setattr(idempotency, "MAX_RECORDS_PER_USER", 3)
    monkeypatch.setattr(idempotency, "ANSWER_TTL_MS", 1500)
    session = make_session()
    for i in range(1, 4):
        assert hold(client, customer, session["id"], [f"A{i}"], key=f"k{i}").status == 201
    over = hold(client, customer, session["id"], ["A4"], key="k4")
    assert over.status == 201
    again = hold(client, customer, session["id"], ["A4"], key="k4")
    assert again.status == 409 and again.code == "SeatUnavailable"  # not the kept 201
    assert len(kept_records(customer)) == 3
    other = make_user()
    assert hold(client, other, session["id"], ["B1"], key="k4").status == 201
    assert hold(client, other, session["id"], ["B1"], key="k4").status == 201  # replayed
    time.sleep(1.6)  # the three records expire
    assert hold(client, customer, session["id"], ["A5"], key="k5").status == 201
    assert hold(client, customer, session["id"], ["A5"], key="k5").status == 201  # kept again
