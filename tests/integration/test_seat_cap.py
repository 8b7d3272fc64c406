"""SEATS_PER_CUSTOMER over a real HTTP socket: what counts towards it (live holds and seats bought
in that session, not cancelled or lapsed holds, not other sessions), the 409 HoldLimitReached it
answers, and that only the same customer's own holds ever wait for each other."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
import requests
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from chalicelib.services.reservations import take_seats
from chalicelib.settings import get_settings
from tests.support.data import move_hold_end
from tests.support.live_server import serve_in_thread
from tests.support.openapi_check import assert_conforms, served_document


@pytest.fixture(scope="module")
def live_url(app_module) -> Iterator[str]:
    with serve_in_thread(app_module.app) as url:
        yield url


def hold(url: str, who: dict, session_id: str, seats: list[str]) -> requests.Response:
    return requests.post(
        f"{url}/reservations",
        json={"session_id": session_id, "seats": seats},
        headers={"Authorization": f"Bearer {who['token']}"},
        timeout=10,
    )


def labels(row: str, first: int, last: int) -> list[str]:
    return [f"{row}{n}" for n in range(first, last + 1)]


def test_the_cap_counts_live_holds_and_seats_bought_in_the_session(
    live_url, customer, make_user, make_session, db
):
    assert get_settings().seats_per_customer == 10  # the default
    session = make_session(rows=3, seats_per_row=10)
    first = hold(live_url, customer, session["id"], labels("A", 1, 4)).json()
    paid = requests.post(
        f"{live_url}/reservations/{first['id']}/payment",
        headers={"Authorization": f"Bearer {customer['token']}"},
        timeout=10,
    )
    assert paid.status_code == 200
    assert hold(live_url, customer, session["id"], labels("A", 5, 10)).status_code == 201

    refused = hold(live_url, customer, session["id"], ["B1"])
    assert refused.status_code == 409
    assert refused.json() == {
        "Code": "HoldLimitReached",
        "Message": refused.json()["Message"],
        "limit": 10,
        "held_seats": 10,
    }
    assert_conforms(
        served_document(), "POST", "/reservations", 409, refused.json(), dict(refused.headers)
    )
    # Another customer, and the same customer in another session, are not affected.
    assert hold(live_url, make_user(), session["id"], ["B1"]).status_code == 201
    assert hold(live_url, customer, make_session()["id"], ["A1"]).status_code == 201


def test_cancelled_and_lapsed_holds_free_their_place(live_url, customer, make_session, db):
    session = make_session(rows=3, seats_per_row=10)
    cancelled = hold(live_url, customer, session["id"], labels("A", 1, 5)).json()
    lapsed = hold(live_url, customer, session["id"], labels("A", 6, 10)).json()
    assert hold(live_url, customer, session["id"], ["B1"]).json()["held_seats"] == 10
    requests.delete(
        f"{live_url}/reservations/{cancelled['id']}",
        headers={"Authorization": f"Bearer {customer['token']}"},
        timeout=10,
    )
    move_hold_end(db, lapsed["id"], -timedelta(seconds=1))  # not yet expired by the pipeline
    assert hold(live_url, customer, session["id"], labels("B", 1, 10)).status_code == 201


def test_a_refused_hold_takes_no_seat_and_zero_turns_the_cap_off(
    live_url, customer, make_session, db, seats_per_customer
):
    session = make_session(rows=3, seats_per_row=10)
    assert hold(live_url, customer, session["id"], labels("A", 1, 8)).status_code == 201
    refused = hold(live_url, customer, session["id"], labels("B", 1, 3))
    assert refused.status_code == 409 and refused.json()["held_seats"] == 8
    free = db.execute(
        "SELECT count(*) AS n FROM seats WHERE session_id = %s AND hold_id IS NULL",
        (session["id"],),
    ).fetchone()
    assert free["n"] == 22
    seats_per_customer(0)
    assert hold(live_url, customer, session["id"], labels("B", 1, 10)).status_code == 201
    assert hold(live_url, customer, session["id"], labels("C", 1, 10)).status_code == 201


def test_only_the_same_customers_holds_wait_for_each_other(make_user, make_session):
    """A hold in progress (not committed) makes the same customer's next hold of that session
    wait; another buyer's hold of the same session does not wait at all."""
    session = make_session(rows=3, seats_per_row=10)
    first, second = make_user(), make_user()
    url = os.environ["DATABASE_URL"]
    with (
        psycopg.connect(url, row_factory=dict_row) as in_progress,
        psycopg.connect(url, row_factory=dict_row) as other,
    ):

        def hold_on(conn: psycopg.Connection, who: dict, seat: str) -> None:
            take_seats(
                conn, customer_id=who["id"], session_id=session["id"], seats=[seat], hold_seconds=30
            )

        hold_on(in_progress, first, "A1")
        other.execute("SET lock_timeout = '300ms'")
        hold_on(other, second, "A2")  # another buyer: no wait
        other.commit()
        with pytest.raises(pg_errors.LockNotAvailable):
            hold_on(other, first, "A3")  # the same customer: waits for the first to finish
        other.rollback()
        in_progress.commit()
