"""The seat-map cache on a real Redis: answers identical to PostgreSQL's, every write seen by the
next read, single-flight rebuilds, and coherence under randomized concurrent writes and reads."""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from chalicelib import cache
from chalicelib.cache import invalidations, loader, redis_store, seat_maps, snapshots
from chalicelib.events import handlers
from chalicelib.services import reservations
from tests.support.data import move_hold_end
from tests.support.sqs import deliver


def hold(client, customer, session_id, seats, **kw):
    return client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"], **kw
    )


def statuses(client, session_id) -> dict[str, str]:
    answer = client.get(f"/sessions/{session_id}/seats")
    assert answer.status == 200, answer.body
    return {s["label"]: s["status"] for s in answer.body["seats"]}


def snapshot_in_redis(session_id: str) -> snapshots.Snapshot | None:
    raw = cache.redis_client().hget(redis_store.keys(session_id)[0], "snap")
    return snapshots.Snapshot.decode(raw) if raw else None


def postgres_seat_map(session_id: str) -> dict:
    """The seat map as PostgreSQL has it now (what a read answers while Redis is down)."""
    return snapshots.render_seat_map(
        session_id, loader.load_snapshot(session_id), snapshots.now_us()
    )


def postgres_session(session_id: str) -> dict:
    return snapshots.render_session(loader.load_snapshot(session_id), snapshots.now_us())


def assert_cached_maps_match_postgres(session_ids) -> None:
    """Every snapshot Redis holds, rendered now, equals what PostgreSQL holds, rendered now."""
    for session_id in session_ids:
        snapshot = snapshot_in_redis(session_id)
        if snapshot is not None:
            now = snapshots.now_us()
            fresh = loader.load_snapshot(session_id)
            assert snapshots.render_seat_map(
                session_id, snapshot, now
            ) == snapshots.render_seat_map(session_id, fresh, now), session_id
            assert snapshots.render_session(snapshot, now) == snapshots.render_session(fresh, now)


def test_warm_answers_are_byte_for_byte_postgres_answers(client, make_user, make_session):
    session = make_session(rows=20, seats_per_row=20)
    buyer, holder = make_user(), make_user()
    paid = hold(client, buyer, session["id"], ["A1", "A2"]).body
    assert client.post(f"/reservations/{paid['id']}/payment", token=buyer["token"]).status == 200
    assert hold(client, holder, session["id"], ["T20", "C3"]).status == 201

    for _ in range(2):  # the first read builds the snapshot, the second is served from it
        seat_map = client.get(f"/sessions/{session['id']}/seats").body
        one = client.get(f"/sessions/{session['id']}").body
        assert json.dumps(seat_map) == json.dumps(postgres_seat_map(session["id"]))
        assert json.dumps(one) == json.dumps(postgres_session(session["id"]))
    assert snapshot_in_redis(session["id"]) is not None
    assert one["available_seats"] == 396
    assert seat_maps.seat_map_with_etag(session["id"])[0] == snapshots.to_json(
        postgres_seat_map(session["id"])
    )
    assert seat_maps.session_json(session["id"]) == snapshots.to_json(
        postgres_session(session["id"])
    )


def test_an_unchanged_map_is_served_without_asking_redis(
    client, customer, make_session, monkeypatch
):
    session = make_session()
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"  # rebuilt and stored
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"  # the store was a change: asks
    calls = []
    counted = redis_store.use_redis  # every command the seat-map cache sends goes through it
    monkeypatch.setattr(redis_store, "use_redis", lambda work: calls.append(1) or counted(work))
    for _ in range(3):
        assert statuses(client, session["id"])["A1"] == "AVAILABLE"
        assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 16
    assert calls == []

    assert hold(client, customer, session["id"], ["A1"]).status == 201  # changed() is one call
    assert statuses(client, session["id"])["A1"] == "RESERVED"
    assert len(calls) >= 2  # the write's delete, then this read asked Redis again


def test_a_write_by_another_instance_is_seen_by_the_next_read_here(client, customer, make_session):
    """This process keeps its copy while Redis reports no change of it. Another instance's write
    deletes the hash, and Redis pushes that change here as it answers that instance."""
    session = make_session()
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"  # served from the local copy
    # Another instance holds A1 and invalidates: its own commit, its own changed().
    reservations.hold_seats(
        customer_id=customer["id"], session_id=session["id"], seats=["A1"], hold_seconds=30
    )
    cache.redis_client().delete(*redis_store.keys(session["id"]))
    assert statuses(client, session["id"])["A1"] == "RESERVED"
    assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 15


def test_every_write_is_seen_by_the_next_read(client, make_user, make_session, db):
    session = make_session()
    first, second = make_user(), make_user()
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"  # warm

    reservation = hold(client, first, session["id"], ["A1", "A2"]).body
    assert statuses(client, session["id"])["A1"] == "RESERVED"
    assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 14

    client.post(f"/reservations/{reservation['id']}/payment", token=first["token"])
    assert statuses(client, session["id"])["A2"] == "SOLD"

    other = hold(client, second, session["id"], ["B1"]).body
    assert statuses(client, session["id"])["B1"] == "RESERVED"
    client.delete(f"/reservations/{other['id']}", token=second["token"])
    assert statuses(client, session["id"])["B1"] == "AVAILABLE"

    late = hold(client, second, session["id"], ["B2"]).body
    assert statuses(client, session["id"])["B2"] == "RESERVED"
    move_hold_end(db, late["id"], -timedelta(seconds=1))
    deliver(handlers.expire_batch, json.dumps({"reservation_id": late["id"]}))
    assert statuses(client, session["id"])["B2"] == "AVAILABLE"
    assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 14
    assert_cached_maps_match_postgres([session["id"]])


@pytest.mark.slow
def test_a_hold_past_its_time_reads_available_from_a_warm_cache(
    client, customer, make_session, hold_seconds
):
    hold_seconds(1)
    session = make_session()
    assert hold(client, customer, session["id"], ["A1"]).status == 201
    assert statuses(client, session["id"])["A1"] == "RESERVED"
    assert snapshot_in_redis(session["id"]) is not None

    time.sleep(1.1)  # no write, no expiry handler: only the clock moved
    assert snapshot_in_redis(session["id"]) is not None
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"
    assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 16


def test_a_rebuild_overtaken_by_a_write_is_not_stored(client, make_user, make_session, monkeypatch):
    """The race the version stamp exists for: a rebuild reads PostgreSQL, a hold commits and
    invalidates, then the rebuild tries to store what it read before the hold."""
    session = make_session()
    buyer = make_user()
    original = seat_maps.load_snapshot
    raced = []

    def load_then_lose_the_race(session_id):
        snapshot = original(session_id)
        if not raced:
            raced.append(hold(client, buyer, session_id, ["A5"]).body)
        return snapshot

    monkeypatch.setattr(seat_maps, "load_snapshot", load_then_lose_the_race)
    first = statuses(client, session["id"])
    assert first["A5"] == "AVAILABLE"  # true when it was read
    assert snapshot_in_redis(session["id"]) is None  # but not kept: a write came after it

    assert statuses(client, session["id"])["A5"] == "RESERVED"
    assert_cached_maps_match_postgres([session["id"]])


@pytest.mark.parametrize(("rebuild_s", "wait_s"), [(0.05, 2.0), (0.5, 0.25)])
def test_cold_map_is_rebuilt_once_for_concurrent_readers(
    client, make_session, monkeypatch, rebuild_s, wait_s
):
    """A rebuild is done once. Readers wait for it up to WAIT_FOR_REBUILD_S; when it takes longer
    (0.5 s against 0.25 s) they give up and read PostgreSQL's seat map directly instead of
    rebuilding the snapshot. (The fast case waits up to 2 s: a shared machine can stall a
    thread for a few hundred ms, and then a reader giving up would be right, not a bug.)"""
    monkeypatch.setattr(seat_maps, "WAIT_FOR_REBUILD_S", wait_s)
    session = make_session(rows=20, seats_per_row=20)
    original_load, original_rebuild = seat_maps.load_snapshot, seat_maps.rebuild
    loads, rebuilds = [], []

    def slow_load(session_id):
        loads.append(session_id)
        time.sleep(rebuild_s)
        return original_load(session_id)

    def counted_rebuild(session_id, token):
        rebuilds.append(session_id)
        return original_rebuild(session_id, token)

    monkeypatch.setattr(seat_maps, "load_snapshot", slow_load)
    monkeypatch.setattr(seat_maps, "rebuild", counted_rebuild)
    readers = 30
    barrier = threading.Barrier(readers)

    def read(_):
        barrier.wait(timeout=10)
        return client.get(f"/sessions/{session['id']}/seats")

    with ThreadPoolExecutor(readers) as pool:
        answers = list(pool.map(read, range(readers)))
    assert {a.status for a in answers} == {200}
    assert all(a.body == answers[0].body for a in answers)
    assert len(rebuilds) == 1
    direct_reads = loads[len(rebuilds) :]  # the loads of readers that gave up waiting
    if rebuild_s > seat_maps.WAIT_FOR_REBUILD_S:
        assert len(direct_reads) == readers - 1
    else:
        assert direct_reads == []


def test_invalidation_lost_while_redis_was_skipped_is_sent_before_the_next_read(
    client, customer, make_session
):
    session = make_session()
    assert statuses(client, session["id"])["A1"] == "AVAILABLE"  # warm
    cache.breaker.failed()  # as after a Redis timeout: this process skips Redis for a while
    try:
        assert hold(client, customer, session["id"], ["A1"]).status == 201
        assert statuses(client, session["id"])["A1"] == "RESERVED"  # from PostgreSQL
        # Redis still holds the stale snapshot: the invalidation could not be sent.
        assert snapshot_in_redis(session["id"]) is not None
    finally:
        cache.breaker.succeeded()  # Redis is back
    assert statuses(client, session["id"])["A1"] == "RESERVED"
    assert invalidations.unsent._sessions == set()


def test_a_script_the_server_has_not_seen_is_loaded_on_first_use():
    """A Redis restart or failover empties its script cache: EVALSHA then answers NOSCRIPT, and
    the script is loaded and run in the same call."""
    marker = uuid.uuid4().hex
    unseen = cache.lua_script(f"return '{marker}'")  # a text no server has cached yet
    client = cache.redis_client()
    assert client.script_exists(unseen.sha) == [False]
    assert unseen([], [], client=client) == marker.encode()
    assert client.script_exists(unseen.sha) == [True]


# --- randomized concurrent holds, payments, cancels and expiries --------------------------------


SEATS = [f"{row}{n}" for row in "AB" for n in range(1, 9)]


class WriteGate:
    """Lets the checker pause the writers at a point where none is between its commit and its
    changed(): there, every snapshot in Redis must be PostgreSQL's, whatever rebuilds are doing."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writing = 0
        self._paused = False

    @contextlib.contextmanager
    def writing(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._paused)
            self._writing += 1
        try:
            yield
        finally:
            with self._cond:
                self._writing -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def paused(self):
        with self._cond:
            self._paused = True
            self._cond.wait_for(lambda: self._writing == 0)
        try:
            yield
        finally:
            with self._cond:
                self._paused = False
                self._cond.notify_all()


def expire_now(reservation_id: str) -> None:
    """What the expiry pipeline does once the hold's time has passed."""
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "UPDATE reservations SET expires_at = now() - interval '1 second' "
            "WHERE id = %s AND status = 'PENDING'",
            (reservation_id,),
        )
        conn.execute(
            "UPDATE seats SET held_until = now() - interval '1 second' WHERE hold_id = %s",
            (reservation_id,),
        )
    deliver(handlers.expire_batch, json.dumps({"reservation_id": reservation_id}))


@pytest.mark.slow
def test_cache_stays_coherent_under_random_concurrent_writes(
    client, make_user, make_session, db, monkeypatch
):
    session_ids = [make_session()["id"] for _ in range(2)]
    buyers = [make_user() for _ in range(6)]
    seeds = [random.Random(20240611 + i).randrange(1 << 30) for i in range(len(buyers))]
    pending: dict[str, list[str]] = {b["id"]: [] for b in buyers}  # each buyer's own holds
    gate = WriteGate()

    # Widen the window between a rebuild's read and its store, where a stale snapshot would slip
    # in if the stamp check were wrong.
    original = seat_maps.load_snapshot

    def jittery_load(session_id):
        snapshot = original(session_id)
        time.sleep(random.random() * 0.01)
        return snapshot

    monkeypatch.setattr(seat_maps, "load_snapshot", jittery_load)

    def act(buyer, r: random.Random) -> None:
        mine = pending[buyer["id"]]
        move = r.random()
        if move < 0.4 or not mine:
            seats = r.sample(SEATS, r.randint(1, 3))
            answer = hold(client, buyer, r.choice(session_ids), seats)
            assert answer.status in (201, 409), answer.body
            if answer.status == 201:
                mine.append(answer.body["id"])
            return
        reservation_id = mine.pop(r.randrange(len(mine)))
        path = f"/reservations/{reservation_id}"
        if move < 0.6:
            answer = client.post(f"{path}/payment", token=buyer["token"])
            assert answer.status == 200, answer.body
        elif move < 0.8:
            answer = client.delete(path, token=buyer["token"])
            assert answer.status == 200, answer.body
        else:
            expire_now(reservation_id)

    def buyer_loop(i: int) -> None:
        r = random.Random(seeds[i])
        for _ in range(30):
            with gate.writing():
                act(buyers[i], r)

    stop = threading.Event()

    def reader_loop(i: int) -> None:
        r = random.Random(i)
        while not stop.is_set():
            path = f"/sessions/{r.choice(session_ids)}" + ("/seats" if r.random() < 0.7 else "")
            assert client.get(path).status == 200

    checks = []

    def checker_loop() -> None:
        while not stop.is_set():
            with gate.paused():
                assert_cached_maps_match_postgres(session_ids)
                checks.append(1)
            time.sleep(0.005)

    with ThreadPoolExecutor(len(buyers) + 4) as pool:
        background = [pool.submit(reader_loop, i) for i in range(3)]
        background.append(pool.submit(checker_loop))
        writers = [pool.submit(buyer_loop, i) for i in range(len(buyers))]
        try:
            for w in writers:
                w.result()
        finally:
            stop.set()
        for b in background:
            b.result()

    monkeypatch.setattr(seat_maps, "load_snapshot", original)
    counts = db.execute(
        "SELECT count(*) FILTER (WHERE status = 'CONFIRMED') AS paid,"
        "       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,"
        "       count(*) FILTER (WHERE status = 'EXPIRED') AS expired"
        "  FROM reservations"
    ).fetchone()
    assert min(counts.values()) > 0, counts
    assert len(checks) > 20
    # At rest: every map Redis holds is PostgreSQL's, and so is every map read through it.
    assert_cached_maps_match_postgres(session_ids)
    for session_id in session_ids:
        assert seat_maps.seat_map_with_etag(session_id)[0] == snapshots.to_json(
            postgres_seat_map(session_id)
        )
        assert seat_maps.session_json(session_id) == snapshots.to_json(postgres_session(session_id))
    assert all(snapshot_in_redis(s) is not None for s in session_ids)
