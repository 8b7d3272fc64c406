"""The unit of work's after-commit hook: what a use case registers runs once its transaction has
committed, and never for a rollback, a failed attempt that was retried, or a COMMIT whose outcome
is unknown. And the use cases register the seat-map invalidation there, only for changes."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest
from psycopg import errors as pg_errors

from chalicelib.cache import invalidations
from chalicelib.db import CommitOutcomeUnknown, after_commit, in_transaction
from chalicelib.domain.errors import Conflict
from chalicelib.events import handlers
from tests.conftest import admin_connection
from tests.support.data import move_hold_end
from tests.support.sqs import deliver


def insert_user(conn: psycopg.Connection, email: str) -> None:
    conn.execute(
        "INSERT INTO users (id, email, name, password_hash, role)"
        " VALUES (gen_random_uuid(), %s, 'n', 'x', 'CUSTOMER')",
        (email,),
    )


def saved(db, email: str) -> bool:
    return db.execute("SELECT 1 FROM users WHERE email = %s", (email,)).fetchone() is not None


def test_callbacks_run_after_the_commit_in_order(db):
    ran: list[tuple[str, bool]] = []

    def work(conn: psycopg.Connection) -> str:
        insert_user(conn, "a@example.com")
        after_commit(lambda: ran.append(("first", saved(db, "a@example.com"))))
        after_commit(lambda: ran.append(("second", saved(db, "a@example.com"))))
        assert ran == []  # registered, not run
        return "done"

    assert in_transaction(work) == "done"
    assert ran == [("first", True), ("second", True)]  # another connection sees the change


def test_a_failing_callback_neither_undoes_the_commit_nor_stops_the_others(db):
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("Redis said no")

    def work(conn: psycopg.Connection) -> None:
        insert_user(conn, "b@example.com")
        after_commit(broken)
        after_commit(lambda: ran.append("next"))

    in_transaction(work)
    assert ran == ["next"] and saved(db, "b@example.com")


def test_no_callback_runs_after_a_rollback(db):
    ran: list[str] = []

    def work(conn: psycopg.Connection) -> None:
        insert_user(conn, "c@example.com")
        after_commit(lambda: ran.append("ran"))
        raise Conflict("refused after the change")

    with pytest.raises(Conflict):
        in_transaction(work)
    assert ran == [] and not saved(db, "c@example.com")


def test_a_retried_attempt_s_callbacks_are_dropped(db):
    ran: list[int] = []
    attempts: list[int] = []

    def work(conn: psycopg.Connection) -> None:
        attempts.append(1)
        attempt = len(attempts)
        after_commit(lambda: ran.append(attempt))
        if attempt == 1:
            raise pg_errors.SerializationFailure("could not serialize access")
        insert_user(conn, "d@example.com")

    in_transaction(work)
    assert attempts == [1, 1] and ran == [2]


def test_no_callback_runs_when_the_commit_s_outcome_is_unknown(db):
    ran: list[str] = []

    def work(conn: psycopg.Connection) -> None:
        insert_user(conn, "e@example.com")
        after_commit(lambda: ran.append("ran"))
        pid = conn.info.backend_pid
        with admin_connection() as admin:  # the connection dies between the work and COMMIT
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            deadline = time.monotonic() + 5
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.01)

    with pytest.raises(CommitOutcomeUnknown):
        in_transaction(work)
    assert ran == []


def test_after_commit_outside_a_unit_of_work_registers_nothing():
    after_commit(lambda: pytest.fail("nothing commits here"))
    in_transaction(lambda conn: None)  # a later unit of work does not inherit it


def test_use_cases_invalidate_the_seat_map_after_a_change_only(
    client, make_user, make_session, db, monkeypatch
):
    changed: list[str] = []
    monkeypatch.setattr(invalidations, "changed", changed.append)
    session = make_session()
    sid = session["id"]
    buyer, other = make_user(), make_user()

    def hold(who, seats):
        return client.post("/reservations", {"session_id": sid, "seats": seats}, token=who["token"])

    paid = hold(buyer, ["A1"]).body
    assert changed == [sid]
    assert hold(other, ["A1"]).status == 409  # refused: rolled back, nothing changed
    assert changed == [sid]
    assert client.post(f"/reservations/{paid['id']}/payment", token=buyer["token"]).status == 200
    assert client.post(f"/reservations/{paid['id']}/payment", token=buyer["token"]).status == 200
    assert changed == [sid] * 2  # paying twice sells nothing the second time

    cancelled = hold(other, ["A2"]).body
    for _ in range(2):
        assert client.delete(f"/reservations/{cancelled['id']}", token=other["token"]).status == 200
    assert changed == [sid] * 4  # the hold, then one cancel

    lapsed = hold(other, ["A3"]).body
    move_hold_end(db, lapsed["id"], -timedelta(seconds=1))
    for _ in range(2):  # on time, then a duplicate
        deliver(handlers.expire_batch, f'{{"reservation_id": "{lapsed["id"]}"}}')
    assert changed == [sid] * 6  # the hold, then one expiry

    swept = hold(other, ["A4"]).body
    move_hold_end(db, swept["id"], -timedelta(seconds=1))
    handlers.sweep(time_budget_s=5)
    assert changed == [sid] * 8
