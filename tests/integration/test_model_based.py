"""Model-based test: hypothesis drives random sequences of create-session, hold, cancel, pay,
let-time-pass, expiry messages and the sweep against the real database (through the Chalice app),
and after every step compares the answers and the seat maps with a simple model, and runs the
audit of bench/audit.py. The model includes the per-customer seat cap (live holds plus seats
bought, per session).

Time is the test's: "let time pass" moves every hold's clock back by the same amount in
PostgreSQL (reservations.expires_at and created_at, seats.held_until), which is what the app sees
when time passes. Holds last HOLD_SECONDS=600 and time moves in steps of 100 s or more, so a hold
is either clearly live (at least 100 s left) or clearly over, whatever the test's own running
time. Each example starts from empty tables (the users excepted), so examples are independent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bench.audit import audit
from chalicelib.cache import invalidations
from chalicelib.events import handlers, relay
from chalicelib.settings import get_settings
from tests.support.data import session_body
from tests.support.sqs import deliver

HOLD_SECONDS = 600
SEATS_PER_CUSTOMER = 10  # the default; two customers reach it in a 16-seat room
PRICE = 2500
LABELS = [f"{row}{n}" for row in "AB" for n in range(1, 9)]  # the 2 x 8 test room
# Emptied before each example; DELETE, not TRUNCATE: a TRUNCATE syncs new files to disk, which
# costs far more than deleting the few rows an example leaves.
EVERYTHING_BUT_USERS = (
    "outbox",
    "processed_events",
    "receipts",
    "session_stats",
    "reservation_seats",
    "seats",
    "sales",
    "reservations",
    "sessions",
)


@dataclass
class Hold:
    id: str
    session_id: str
    seats: list[str]
    owner: int
    status: str = "PENDING"  # PENDING, CONFIRMED, CANCELLED, EXPIRED (as stored)
    left_s: int = HOLD_SECONDS
    sale_id: str | None = None

    def visible(self) -> str:
        if self.status == "PENDING" and self.left_s <= 0:
            return "EXPIRED"
        return self.status

    @property
    def live(self) -> bool:
        return self.status == "PENDING" and self.left_s > 0


@dataclass
class Room:
    id: str
    holder: dict[str, Hold | None] = field(default_factory=lambda: dict.fromkeys(LABELS))
    sold: dict[str, Hold] = field(default_factory=dict)

    def status(self, label: str) -> str:
        if label in self.sold:
            return "SOLD"
        holder = self.holder[label]
        return "RESERVED" if holder is not None and holder.live else "AVAILABLE"


class BoxOfficeMachine(RuleBasedStateMachine):
    # Set by the test function (pytest fixtures do not reach a state machine directly).
    client: Any = None
    db: Any = None
    customers: list[dict[str, Any]] = []
    manager: dict[str, Any] = {}

    rooms = Bundle("rooms")
    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        with self.db.transaction():
            for table in EVERYTHING_BUT_USERS:
                self.db.execute(f"DELETE FROM {table}")
        self.model_rooms: dict[str, Room] = {}
        self.model_holds: dict[str, Hold] = {}

    # --- rules --------------------------------------------------------------------------------

    @initialize(target=rooms)
    def first_session(self) -> str:
        return self.create_session()

    @precondition(lambda self: len(self.model_rooms) < 2)
    @rule(target=rooms)
    def create_session(self) -> str:
        answer = self.client.post("/sessions", session_body(), token=self.manager["token"])
        assert answer.status == 201, answer.body
        assert answer.body["available_seats"] == 16
        self.model_rooms[answer.body["id"]] = Room(answer.body["id"])
        return answer.body["id"]

    @rule(
        target=holds,
        room=rooms,
        seats=st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True),
        who=st.integers(0, 1),
    )
    def hold(self, room: str, seats: list[str], who: int) -> Any:
        model = self.model_rooms[room]
        answer = self.client.post(
            "/reservations",
            {"session_id": room, "seats": seats},
            token=self.customers[who]["token"],
        )
        mine = sum(
            len(h.seats)
            for h in self.model_holds.values()
            if h.owner == who and h.session_id == room and (h.live or h.status == "CONFIRMED")
        )
        if mine + len(seats) > SEATS_PER_CUSTOMER:  # checked before the seats are
            assert answer.status == 409, (answer.status, answer.body, mine)
            assert answer.code == "HoldLimitReached"
            assert (answer.body["limit"], answer.body["held_seats"]) == (SEATS_PER_CUSTOMER, mine)
            return multiple()
        taken = sorted(s for s in seats if model.status(s) != "AVAILABLE")
        if taken:
            assert answer.status == 409, (answer.status, answer.body, taken)
            assert answer.code == "SeatUnavailable"
            assert sorted(answer.body["seats"]) == taken
            return multiple()
        assert answer.status == 201, (answer.status, answer.body)
        assert answer.body["status"] == "PENDING"
        assert answer.body["amount_cents"] == PRICE * len(seats)
        held = Hold(answer.body["id"], room, seats, who)
        self.model_holds[held.id] = held
        for seat in seats:
            model.holder[seat] = held
        return held.id

    @rule(reservation=holds, stranger=st.booleans())
    def pay(self, reservation: str, stranger: bool) -> None:
        held = self.model_holds[reservation]
        who = 1 - held.owner if stranger else held.owner
        answer = self.client.post(
            f"/reservations/{reservation}/payment", token=self.customers[who]["token"]
        )
        if stranger:
            assert answer.status == 404, answer.body
            return
        expected = {"PENDING": 200, "CONFIRMED": 200, "CANCELLED": 409, "EXPIRED": 410}
        assert answer.status == expected[held.visible()], (held, answer.status, answer.body)
        if answer.status != 200:
            return
        if held.status == "CONFIRMED":
            assert answer.body["id"] == held.sale_id, "paying again returns the same sale"
            return
        assert answer.body["amount_cents"] == PRICE * len(held.seats)
        held.status, held.sale_id = "CONFIRMED", answer.body["id"]
        room = self.model_rooms[held.session_id]
        for seat in held.seats:
            room.holder[seat] = None
            room.sold[seat] = held

    @rule(reservation=holds)
    def cancel(self, reservation: str) -> None:
        held = self.model_holds[reservation]
        answer = self.client.delete(
            f"/reservations/{reservation}", token=self.customers[held.owner]["token"]
        )
        expected = {"PENDING": 200, "CANCELLED": 200, "CONFIRMED": 409, "EXPIRED": 410}
        assert answer.status == expected[held.visible()], (held, answer.status, answer.body)
        if answer.status == 200:
            assert answer.body["status"] == "CANCELLED"
            if held.status == "PENDING":
                held.status = "CANCELLED"
                self._release(held)

    @rule(seconds=st.sampled_from([100, 250, 600]))
    def let_time_pass(self, seconds: int) -> None:
        self.db.execute(
            "UPDATE reservations SET expires_at = expires_at - make_interval(secs => %s), "
            "created_at = created_at - make_interval(secs => %s)",
            (seconds, seconds),
        )
        self.db.execute(
            "UPDATE seats SET held_until = held_until - make_interval(secs => %s) "
            "WHERE held_until IS NOT NULL",
            (seconds,),
        )
        for held in self.model_holds.values():
            held.left_s -= seconds
        # The cached seat maps hold the old held_until (time passing needs no invalidation in
        # real life; rewriting the clock does).
        for room in self.model_rooms:
            invalidations.changed(room)

    @rule(reservation=holds, times=st.integers(1, 2))
    def expiry_message(self, reservation: str, times: int) -> None:
        """The SQS expiry message, early, on time, late or twice."""
        for _ in range(times):
            deliver(handlers.expire_batch, json.dumps({"reservation_id": reservation}))
        held = self.model_holds[reservation]
        if held.status == "PENDING" and held.left_s <= 0:
            held.status = "EXPIRED"
            self._release(held)

    @rule()
    def sweep(self) -> None:
        handlers.sweep()
        for held in self.model_holds.values():
            if held.status == "PENDING" and held.left_s <= 0:
                held.status = "EXPIRED"
                self._release(held)

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def audit_is_clean(self) -> None:
        found = audit(self.db)
        assert not any(found.values()), found

    @invariant()
    def seat_maps_match_the_model(self) -> None:
        for room_id, room in self.model_rooms.items():
            answer = self.client.get(f"/sessions/{room_id}/seats")
            assert answer.status == 200
            seen = {s["label"]: s["status"] for s in answer.body["seats"]}
            assert seen == {label: room.status(label) for label in LABELS}, room_id
            stored = self.db.execute(
                """
                SELECT label, CASE WHEN sale_id IS NOT NULL THEN 'SOLD'
                                   WHEN held_until > now() THEN 'RESERVED'
                                   ELSE 'AVAILABLE' END AS status
                  FROM seats WHERE session_id = %s
                """,
                (room_id,),
            ).fetchall()
            assert {r["label"]: r["status"] for r in stored} == seen
            available = sum(1 for status in seen.values() if status == "AVAILABLE")
            assert self.client.get(f"/sessions/{room_id}").body["available_seats"] == available

    @invariant()
    def reservations_match_the_model(self) -> None:
        for held in self.model_holds.values():
            answer = self.client.get(
                f"/reservations/{held.id}", token=self.customers[held.owner]["token"]
            )
            assert answer.status == 200
            assert answer.body["status"] == held.visible(), held

    @invariant()
    def money_adds_up(self) -> None:
        if not self.model_rooms:
            return
        expected = sum(
            PRICE * len(h.seats) for h in self.model_holds.values() if h.status == "CONFIRMED"
        )
        row = self.db.execute(
            "SELECT coalesce(sum(amount_cents), 0) AS total, count(*) AS n FROM sales "
            "WHERE session_id = ANY(%s::uuid[])",
            (list(self.model_rooms),),
        ).fetchone()
        assert row["total"] == expected
        sold_seats = sum(len(room.sold) for room in self.model_rooms.values())
        assert sold_seats * PRICE == expected

    def _release(self, held: Hold) -> None:
        room = self.model_rooms[held.session_id]
        for seat in held.seats:
            if room.holder[seat] is held:
                room.holder[seat] = None


@pytest.mark.slow
def test_box_office_state_machine(client, db, make_user, manager, hold_seconds, monkeypatch):
    hold_seconds(HOLD_SECONDS)
    assert get_settings().seats_per_customer == SEATS_PER_CUSTOMER
    # Events stay in the outbox, where the audit reads them; nothing floods the shared queues.
    monkeypatch.setattr(relay, "publish_backlog", lambda *a, **k: 0)
    BoxOfficeMachine.client = client
    BoxOfficeMachine.db = db
    BoxOfficeMachine.customers = [make_user(), make_user()]
    BoxOfficeMachine.manager = manager
    run_state_machine_as_test(
        BoxOfficeMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
