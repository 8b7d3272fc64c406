"""When a hold may still be paid: its time is read on the database's clock at the moment of the
check, after the reservation's row lock was obtained (not when the transaction started, which a
lock wait can put seconds in the past); and a session that starts during a live hold does not
stop the customer from paying it, though no hold can be taken once it has started."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg

from tests.support.data import move_hold_end


def hold(client, customer, session_id, seats):
    return client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"]
    )


def test_a_hold_that_runs_out_while_payment_waits_for_its_lock_is_not_paid(
    client, customer, make_session, db, database
):
    session = make_session()
    held = hold(client, customer, session["id"], ["A1"]).body
    move_hold_end(db, held["id"], timedelta(seconds=1))
    with psycopg.connect(database) as blocker, ThreadPoolExecutor(1) as pool:
        # Another transaction (an expiry batch, say) holds the reservation's row lock...
        blocker.execute("SELECT 1 FROM reservations WHERE id = %s FOR NO KEY UPDATE", (held["id"],))
        started = time.monotonic()
        paying = pool.submit(
            client.post, f"/reservations/{held['id']}/payment", token=customer["token"]
        )
        # ...while the payment's transaction starts, the hold still live, and waits (under the
        # 2 s lock_timeout) until the hold has run out.
        time.sleep(1.7)
        blocker.rollback()
        answer = paying.result()
    assert time.monotonic() - started < 3
    assert answer.status == 410 and answer.code == "HoldExpired", answer.body
    assert db.execute("SELECT count(*) AS n FROM sales").fetchone()["n"] == 0
    state = db.execute("SELECT status FROM reservations WHERE id = %s", (held["id"],)).fetchone()
    assert state["status"] == "PENDING"  # read as EXPIRED; the expiry pipeline closes it


def test_a_live_hold_is_paid_even_if_the_session_started_during_it(
    client, customer, make_session, db
):
    session = make_session()
    held = hold(client, customer, session["id"], ["A1", "A2"]).body
    db.execute(
        "UPDATE sessions SET starts_at = now() - interval '1 minute' WHERE id = %s",
        (session["id"],),
    )
    paid = client.post(f"/reservations/{held['id']}/payment", token=customer["token"])
    assert paid.status == 200 and paid.body["seats"] == ["A1", "A2"]


def test_no_hold_is_taken_once_the_session_started(client, customer, make_session, db):
    session = make_session()
    db.execute(
        "UPDATE sessions SET starts_at = now() - interval '1 second' WHERE id = %s",
        (session["id"],),
    )
    refused = hold(client, customer, session["id"], ["A1"])
    assert refused.status == 409 and refused.code == "InvalidState"
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
