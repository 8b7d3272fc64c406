"""Seat maps and sessions read from Redis when warm; PostgreSQL stays the only judge of seats.

What is cached, and how the statuses are computed: `snapshots.py`. Where it is kept in Redis and
why a stored snapshot is never older than the last commit before it (coherence): `redis_store.py`.
The copies each process keeps while Redis reports no change: `local_copies.py`. What a commit
sends, and what happens to it while Redis is down: `invalidations.py`. This module is the read
path that puts them together.

Single flight. Only the reader holding the session's rebuild lock queries PostgreSQL; the others
poll for the snapshot for up to WAIT_FOR_REBUILD_S, then read PostgreSQL themselves.

Redis down. Reads go straight to PostgreSQL, through the same loader and the same rendering as a
rebuild, so the answer (and the seat map's ETag) is the text a warm cache would give.
"""

from __future__ import annotations

import time
import uuid

from chalicelib.cache import RedisUnavailable, redis_store, snapshots
from chalicelib.cache.invalidations import unsent
from chalicelib.cache.loader import load_snapshot
from chalicelib.cache.local_copies import copies, watch
from chalicelib.cache.snapshots import Snapshot, now_us

WAIT_FOR_REBUILD_S = 0.25
POLL_S = 0.01


def rebuild(session_id: str, token: str) -> tuple[Snapshot, bool]:
    """The snapshot fresh from PostgreSQL, and whether it was stored as the current one."""
    try:
        snapshot = load_snapshot(session_id)
    except BaseException:
        redis_store.release(session_id, token)
        raise
    return snapshot, redis_store.store_if_stamped(session_id, token, snapshot)


def cached_snapshot(session_id: str) -> Snapshot | None:
    """The current snapshot, from this process's copy while Redis reports no change of it, else
    from Redis or rebuilt by this reader; None when the caller should read PostgreSQL itself
    (Redis unavailable, or another reader's rebuild took too long)."""
    hash_key = redis_store.snapshot_key(session_id)
    known_build, known, known_stamp = copies.snapshots.get(session_id, (b"", None, None))
    if known is not None and unsent.empty() and watch.unchanged(hash_key, known_stamp):
        return known
    token = uuid.uuid4().hex
    deadline = time.monotonic() + WAIT_FOR_REBUILD_S
    try:
        unsent.flush()
        while True:
            stamp = watch.stamp(hash_key)  # before asking: a change after it voids the answer
            answer = redis_store.read_or_claim(session_id, token, known_build)
            if answer[0] == redis_store.CURRENT and known is not None:
                copies.remember(session_id, known_build, known, stamp)
                return known
            if answer[0] == redis_store.ANOTHER:
                snapshot = Snapshot.decode(answer[1])
                copies.remember(session_id, answer[2], snapshot, stamp)
                return snapshot
            if answer[0] == redis_store.REBUILD:
                snapshot, stored = rebuild(session_id, token)
                if stored:
                    # Storing it changed the hash, so this stamp is void at once; the next read
                    # asks Redis (CURRENT, a few bytes) and keeps the copy from then on.
                    copies.remember(session_id, token.encode(), snapshot, stamp)
                return snapshot
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_S)
    except RedisUnavailable:
        return None


# --- what the routes call ---------------------------------------------------------------------


def session_json(session_id: str) -> str:
    """The session (with available_seats) as the JSON text Chalice would send for it."""
    snapshot = cached_snapshot(session_id)
    if snapshot is None:
        return snapshots.session_json(load_snapshot(session_id), now_us())
    return copies.views_of(session_id, snapshot).session_json


def seat_map_with_etag(session_id: str) -> tuple[str, str]:
    """The seat map as JSON text, and its ETag. Warm, both come from this process's rendered views
    without touching PostgreSQL; otherwise the map read from PostgreSQL hashes to the same ETag as
    the same map rendered from a snapshot."""
    snapshot = cached_snapshot(session_id)
    if snapshot is None:
        text = snapshots.seat_map_json(session_id, load_snapshot(session_id), now_us())
        return text, snapshots.seat_map_etag(text)
    views = copies.views_of(session_id, snapshot)
    return views.seat_map_json, views.seat_map_etag
