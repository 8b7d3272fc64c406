"""Seat maps and sessions read from Redis when warm; PostgreSQL stays the only judge of seats.

What is cached. Per session, one Redis hash `seatmap:{id}` holds a snapshot: the session's fields
and, per seat, whether it is sold and until when it is held. Statuses (and `available_seats`) are
computed when read, with the reader's clock, so a hold past its time reads AVAILABLE although
nothing was written when it ran out.

Coherence. Every hold, cancel, sale and expiry calls `changed()` after its commit, which deletes
the hash (and any rebuild lock). A rebuild first stamps the hash with its own token, then reads
PostgreSQL, then stores its snapshot only if its token is still there (compare-and-set in Lua). A
`changed()` in between, i.e. a commit the rebuild may have missed, removed the token, so that
snapshot is thrown away and the next reader rebuilds. A stored snapshot is therefore never older
than the last `changed()` before it. The hash also expires after SNAPSHOT_TTL_MS, a backstop for a
process that died between its commit and its `changed()`.

In-process copies. Each process keeps the last snapshot it read per session and uses it without
asking Redis while Redis's change notices (client tracking, `chalicelib/cache/watch.py`) report no
change of the hash since it was read: the delete that every write sends is such a change, and its
notice reaches every instance as Redis answers the writer. The snapshot's expiry is one too.

Single flight. Only the reader holding the session's rebuild lock (SET NX PX) queries PostgreSQL;
the others poll for the snapshot for up to WAIT_FOR_REBUILD_S, then read PostgreSQL themselves.

Redis down. Reads go straight to PostgreSQL. An invalidation that could not be sent is kept in
this process and sent before this process reads the cache again, so its own readers never see a
map its own writes made stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from chalicelib.cache import LuaScript, RedisUnavailable, key, use_redis
from chalicelib.cache.watch import KeyWatch, Stamp
from chalicelib.db import in_transaction
from chalicelib.domain.errors import NotFound
from chalicelib.services import sessions, views

SNAPSHOT_TTL_MS = 60_000
REBUILD_LEASE_MS = 2_000
WAIT_FOR_REBUILD_S = 0.25
POLL_S = 0.01

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
END_OF_TIME_US = 2**63 - 1


# --- the snapshot and what readers see --------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The session's fields (without available_seats) and its seats in map order, each as
    [label, row, number, sold, held_until in epoch microseconds or None]."""

    session: dict[str, Any]
    seats: list[list[Any]]

    def encode(self) -> bytes:
        return json.dumps([self.session, self.seats], separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Snapshot:
        session, seats = json.loads(raw)
        return cls(session, seats)


def epoch_us(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_MICROSECOND


def now_us() -> int:
    return time.time_ns() // 1000


def seat_status(sold: bool, held_until_us: int | None, now: int) -> str:
    """The same rule as the SQL in services/sessions.py: a hold counts only while in time."""
    if sold:
        return "SOLD"
    if held_until_us is not None and held_until_us > now:
        return "RESERVED"
    return "AVAILABLE"


def render_seat_map(session_id: str, snapshot: Snapshot, now: int) -> views.SeatMap:
    return {
        "session_id": session_id,
        "seats": [
            {"label": label, "row": row, "number": number, "status": seat_status(sold, until, now)}
            for label, row, number, sold, until in snapshot.seats
        ],
    }


def render_session(snapshot: Snapshot, now: int) -> views.Session:
    available = sum(
        1 for _, _, _, sold, until in snapshot.seats if seat_status(sold, until, now) == "AVAILABLE"
    )
    return {**snapshot.session, "available_seats": available}


def to_json(body: Any) -> str:
    """The exact text Chalice sends for a dict body (chalice.app.Response.to_dict)."""
    return json.dumps(body, separators=(",", ":"))


def seat_map_etag(seat_map_json: str) -> str:
    """A strong entity tag for the seat map's JSON text: the same text gives the same tag in every
    process, whether it was rendered from a cached snapshot or read from PostgreSQL, so a client
    polling any instance gets 304 until a seat's status really changes."""
    return '"' + hashlib.blake2b(seat_map_json.encode(), digest_size=16).hexdigest() + '"'


def next_change_us(snapshot: Snapshot, now: int) -> int:
    """When the first hold still in time runs out: until then every status read stays the same."""
    return min(
        (
            until
            for _, _, _, sold, until in snapshot.seats
            if not sold and until is not None and until > now
        ),
        default=END_OF_TIME_US,
    )


@dataclass(frozen=True)
class Views:
    """What readers get from one snapshot, as JSON text (and the seat map's ETag, hashed once
    here, so a conditional read that ends in 304 costs a dictionary lookup and a string compare),
    good until `valid_until_us`."""

    snapshot: Snapshot
    valid_until_us: int
    seat_map_json: str
    seat_map_etag: str
    session_json: str

    @classmethod
    def render(cls, session_id: str, snapshot: Snapshot, now: int) -> Views:
        seat_map_json = to_json(render_seat_map(session_id, snapshot, now))
        return cls(
            snapshot,
            next_change_us(snapshot, now),
            seat_map_json,
            seat_map_etag(seat_map_json),
            to_json(render_session(snapshot, now)),
        )


# --- PostgreSQL: the source -------------------------------------------------------------------


def load_snapshot(session_id: str) -> Snapshot:
    """The raw facts the statuses are computed from. Read committed is enough: a session's own
    fields never change after creation, and the seats come from one statement."""

    def work(conn: psycopg.Connection) -> Snapshot:
        row = conn.execute(
            """
            SELECT s.id, s.movie, s.room, s.starts_at, s.price_cents, s.total_seats
              FROM sessions s WHERE s.id = %s
            """,
            (session_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"session {session_id} not found")
        seats = conn.execute(
            """
            SELECT label, seat_row, number, sale_id IS NOT NULL AS sold, held_until
              FROM seats WHERE session_id = %s
             ORDER BY id
            """,
            (session_id,),
        ).fetchall()
        fields = sessions.session_view({**row, "available_seats": None})
        del fields["available_seats"]  # computed at read time
        return Snapshot(
            fields,
            [
                [
                    s["label"],
                    s["seat_row"],
                    s["number"],
                    s["sold"],
                    epoch_us(s["held_until"]) if s["held_until"] is not None else None,
                ]
                for s in seats
            ],
        )

    return in_transaction(work)


# --- Redis: the cache -------------------------------------------------------------------------


def _keys(session_id: str) -> list[str]:
    # One hash tag, so both keys live in the same cluster slot (the scripts touch both).
    return [key("seatmap", f"{{{session_id}}}"), key("seatmap", f"{{{session_id}}}", "rebuild")]


# ARGV = this reader's token, the lease in ms, the build token of the snapshot this process already
# holds ('' if none). Answers {0} when that snapshot is still current (nothing to transfer),
# {1, snapshot, its build token} for another current snapshot, {2} when this reader now owns the
# rebuild, {3} when another reader does. Owning it means the rebuild lock plus the hash stamped
# with this reader's token; the stamp expires with the lease, so a rebuilder that dies leaves
# nothing behind for long.
READ_OR_CLAIM = LuaScript(
    """
    if redis.call('HEXISTS', KEYS[1], 'snap') == 1 then
        local build = redis.call('HGET', KEYS[1], 'build')
        if build == ARGV[3] then return {0} end
        return {1, redis.call('HGET', KEYS[1], 'snap'), build}
    end
    if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
        redis.call('HSET', KEYS[1], 'build', ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return {2}
    end
    return {3}
    """
)

# Store the snapshot only if the hash still carries this rebuild's stamp (no changed() since the
# stamp, no newer rebuild), and release the lock if it is still ours. Returns 1 if stored.
STORE_IF_STAMPED = LuaScript(
    """
    local stored = 0
    if redis.call('HGET', KEYS[1], 'build') == ARGV[1] then
        redis.call('HSET', KEYS[1], 'snap', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        stored = 1
    end
    if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
    return stored
    """
)

RELEASE = LuaScript(
    """
    if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
    return 0
    """
)


class _UnsentInvalidations:
    """Sessions whose `changed()` did not reach Redis. Until they are sent, this process reads
    those sessions (and, while anything is unsent, every session) from PostgreSQL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: set[str] = set()

    def add(self, session_id: str) -> None:
        with self._lock:
            self._sessions.add(session_id)

    def empty(self) -> bool:
        return not self._sessions

    def flush(self) -> None:
        """Raises RedisUnavailable if they still cannot be sent."""
        if not self._sessions:
            return
        with self._lock:
            pending = list(self._sessions)
        if pending:
            use_redis(lambda r: r.delete(*[k for sid in pending for k in _keys(sid)]))
            with self._lock:
                self._sessions.difference_update(pending)


unsent = _UnsentInvalidations()


def _rebuild(session_id: str, token: str) -> tuple[Snapshot, bool]:
    """The snapshot fresh from PostgreSQL, and whether it was stored as the current one."""
    keys = _keys(session_id)
    try:
        snapshot = load_snapshot(session_id)
    except BaseException:
        with contextlib.suppress(RedisUnavailable):  # otherwise the lease runs out on its own
            use_redis(lambda r: RELEASE(r, keys, [token]))
        raise
    try:
        stored = use_redis(
            lambda r: STORE_IF_STAMPED(r, keys, [token, snapshot.encode(), SNAPSHOT_TTL_MS])
        )
    except RedisUnavailable:
        stored = 0
    return snapshot, bool(stored)


class _Recent:
    """This process's copy of the snapshots it last saw: with the build token Redis gave it, so
    that a read whose snapshot has not changed moves a few bytes from Redis instead of the whole
    map, and with the watch's stamp taken before it was read, so that while Redis reports no change
    of the hash it is used without asking Redis at all. The JSON rendered from it is reused until
    the next hold in it runs out."""

    MAX_SESSIONS = 1024

    def __init__(self) -> None:
        self.snapshots: dict[str, tuple[bytes, Snapshot, Stamp | None]] = {}
        self.views: dict[str, Views] = {}

    def remember(
        self, session_id: str, build: bytes, snapshot: Snapshot, stamp: Stamp | None
    ) -> None:
        if len(self.snapshots) >= self.MAX_SESSIONS:
            self.snapshots.clear()  # crude, but bounded; the cost is one full transfer each
            self.views.clear()
        self.snapshots[session_id] = (build, snapshot, stamp)

    def views_of(self, session_id: str, snapshot: Snapshot) -> Views:
        now = now_us()
        views = self.views.get(session_id)
        if views is None or views.snapshot is not snapshot or now >= views.valid_until_us:
            views = Views.render(session_id, snapshot, now)
            self.views[session_id] = views
        return views


recent = _Recent()
watch = KeyWatch(lambda: key("seatmap", ""))


def cached_snapshot(session_id: str) -> Snapshot | None:
    """The current snapshot, from this process's copy while Redis reports no change of it, else
    from Redis or rebuilt by this reader; None when the caller should read PostgreSQL itself
    (Redis unavailable, or another reader's rebuild took too long)."""
    keys = _keys(session_id)
    known_build, known, known_stamp = recent.snapshots.get(session_id, (b"", None, None))
    if known is not None and unsent.empty() and watch.unchanged(keys[0], known_stamp):
        return known
    token = uuid.uuid4().hex
    deadline = time.monotonic() + WAIT_FOR_REBUILD_S
    try:
        unsent.flush()
        while True:
            stamp = watch.stamp(keys[0])  # before asking: a change after it voids the answer
            answer = use_redis(
                lambda r: READ_OR_CLAIM(r, keys, [token, REBUILD_LEASE_MS, known_build])
            )
            if answer[0] == 0 and known is not None:
                recent.remember(session_id, known_build, known, stamp)
                return known
            if answer[0] == 1:
                snapshot = Snapshot.decode(answer[1])
                recent.remember(session_id, answer[2], snapshot, stamp)
                return snapshot
            if answer[0] == 2:
                snapshot, stored = _rebuild(session_id, token)
                if stored:
                    # Storing it changed the hash, so this stamp is void at once; the next read
                    # asks Redis (answer 0, a few bytes) and keeps the copy from then on.
                    recent.remember(session_id, token.encode(), snapshot, stamp)
                return snapshot
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_S)
    except RedisUnavailable:
        return None


# --- the hooks the routes and event handlers call ---------------------------------------------


def session(session_id: str) -> views.Session:
    snapshot = cached_snapshot(session_id)
    if snapshot is None:
        return sessions.get_session(session_id)
    return render_session(snapshot, now_us())


def seat_map(session_id: str) -> views.SeatMap:
    snapshot = cached_snapshot(session_id)
    if snapshot is None:
        return sessions.seat_map(session_id)
    return render_seat_map(session_id, snapshot, now_us())


def session_json(session_id: str) -> str:
    """`session()` as the JSON text Chalice would send for it."""
    snapshot = cached_snapshot(session_id)
    if snapshot is None:
        return to_json(sessions.get_session(session_id))
    return recent.views_of(session_id, snapshot).session_json


def seat_map_json(session_id: str) -> str:
    """`seat_map()` as the JSON text Chalice would send for it."""
    return seat_map_with_etag(session_id)[0]


def seat_map_with_etag(session_id: str) -> tuple[str, str]:
    """`seat_map_json()` and its ETag. Warm, both come from this process's rendered views without
    touching PostgreSQL; otherwise the map read from PostgreSQL hashes to the same ETag as the
    same map rendered from a snapshot."""
    snapshot = cached_snapshot(session_id)
    if snapshot is None:
        text = to_json(sessions.seat_map(session_id))
        return text, seat_map_etag(text)
    views = recent.views_of(session_id, snapshot)
    return views.seat_map_json, views.seat_map_etag


def changed(session_id: str) -> None:
    """A hold, cancel, expiry or sale changed this session's seats (called after the commit).
    Deleting the hash both drops the snapshot and voids any rebuild that began before now."""
    keys = _keys(session_id)
    try:
        use_redis(lambda r: r.delete(*keys))
    except RedisUnavailable:
        unsent.add(session_id)
    finally:
        # Copies this process read before the delete are void here at once, not when Redis's
        # notice of it arrives.
        watch.changed_here(keys[0])
