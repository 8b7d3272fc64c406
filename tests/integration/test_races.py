"""Concurrency: many buyers for the same seats, each on its own database connection."""

from __future__ import annotations

import os
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.rows import dict_row

from chalicelib.domain.errors import HoldLimitReached, SeatUnavailable
from chalicelib.services.reservations import take_seats

BUYERS = 200


def _max_connections(db) -> int:
    return int(db.execute("SHOW max_connections").fetchone()["max_connections"])


def race(session_id: str, customers: list[str], wanted: list[list[str]]) -> Counter:
    """Every buyer opens its own connection, waits at a barrier, then holds at the same time."""
    barrier = threading.Barrier(len(customers))
    url = os.environ["DATABASE_URL"]

    def buyer(i: int) -> str:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            conn.execute("SELECT 1")
            barrier.wait(timeout=60)
            try:
                take_seats(
                    conn,
                    customer_id=customers[i],
                    session_id=session_id,
                    seats=wanted[i],
                    hold_seconds=30,
                )
                conn.commit()
                return "201"
            except SeatUnavailable:
                conn.rollback()
                return "409"
            except HoldLimitReached:
                conn.rollback()
                return "409 HoldLimitReached"
            except Exception as exc:  # anything else (a deadlock, a lock timeout) is a failure
                conn.rollback()
                return f"error {type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        return Counter(pool.map(buyer, range(len(customers))))


def live_holds_per_seat(db, session_id: str) -> Counter:
    rows = db.execute(
        """
        SELECT rs.seat_id FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
         WHERE r.session_id = %s AND r.status = 'PENDING' AND r.expires_at > now()
        """,
        (session_id,),
    ).fetchall()
    return Counter(r["seat_id"] for r in rows)


ALL_SEATS = [f"{row}{n}" for row in "AB" for n in range(1, 9)]


@pytest.mark.slow
@pytest.mark.parametrize("wanted", [1, 2, 10])
def test_200_buyers_same_seats_one_winner(db, make_user, make_session, wanted):
    if _max_connections(db) < BUYERS + 20:
        pytest.skip("PostgreSQL max_connections too low; run scripts/prepare-services.sh")
    session = make_session(rows=2, seats_per_row=8)
    customers = [make_user()["id"] for _ in range(BUYERS)]
    outcome = race(session["id"], customers, [ALL_SEATS[:wanted]] * BUYERS)
    assert outcome == Counter({"201": 1, "409": BUYERS - 1}), outcome
    per_seat = live_holds_per_seat(db, session["id"])
    assert len(per_seat) == wanted and set(per_seat.values()) == {1}
    assert seats_held(db, session["id"]) == wanted


@pytest.mark.slow
def test_200_buyers_want_the_whole_room(db, make_user, make_session):
    """All 16 seats wanted by everyone. A hold takes at most 10 seats (the contract), so half the
    buyers ask for A1..B2 and half for B3..B8: one winner per group, every seat held once."""
    if _max_connections(db) < BUYERS + 20:
        pytest.skip("PostgreSQL max_connections too low; run scripts/prepare-services.sh")
    session = make_session(rows=2, seats_per_row=8)
    customers = [make_user()["id"] for _ in range(BUYERS)]
    wanted = [ALL_SEATS[:10] if i % 2 else ALL_SEATS[10:] for i in range(BUYERS)]
    outcome = race(session["id"], customers, wanted)
    assert outcome == Counter({"201": 2, "409": BUYERS - 2}), outcome
    per_seat = live_holds_per_seat(db, session["id"])
    assert len(per_seat) == 16 and set(per_seat.values()) == {1}
    assert seats_held(db, session["id"]) == 16


def seats_held(db, session_id: str) -> int:
    return db.execute(
        "SELECT count(*) AS n FROM seats WHERE session_id = %s AND hold_id IS NOT NULL",
        (session_id,),
    ).fetchone()["n"]


@pytest.mark.slow
def test_opposite_order_never_deadlocks(db, make_user, make_session):
    """A takes A1 then A3 while B takes A3 then A1, 100 times: one wins, the other gets 409."""
    session = make_session()
    first, second = make_user()["id"], make_user()["id"]
    for _ in range(100):
        outcome = race(session["id"], [first, second], [["A1", "A3"], ["A3", "A1"]])
        assert set(outcome) <= {"201", "409"}, outcome
        assert outcome["201"] <= 1
        db.execute(
            "UPDATE seats SET hold_id = NULL, held_until = NULL WHERE session_id = %s",
            (session["id"],),
        )
        db.execute(
            "UPDATE reservations SET status = 'CANCELLED', closed_at = now() "
            "WHERE status = 'PENDING'"
        )


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(5))
def test_parallel_holds_by_one_customer_never_pass_the_seat_cap(
    db, make_user, make_session, attempt
):
    """8 holds of 2 different seats each, by one customer, at the same moment, with the default
    cap of 10: exactly 5 pass (10 seats) and 3 are refused, whatever the interleaving."""
    session = make_session(rows=2, seats_per_row=8)
    customer = make_user()["id"]
    pairs = [ALL_SEATS[i : i + 2] for i in range(0, 16, 2)]
    outcome = race(session["id"], [customer] * 8, pairs)
    assert outcome == Counter({"201": 5, "409 HoldLimitReached": 3}), outcome
    assert seats_held(db, session["id"]) == 10
