"""Redis's own change notices for a key prefix (client tracking in broadcast mode), so a process can
reuse what it read from Redis until Redis says the key changed, without asking again.

One connection per process runs `CLIENT TRACKING ON BCAST PREFIX <prefix>` over RESP3. From then
on Redis pushes down it the name of every key under the prefix that any client writes or deletes,
or that expires or is evicted. A reader takes `stamp(key)` before it asks Redis for the key and
keeps the answer with that stamp; `unchanged(key, stamp)` later reads the notices already waiting
on the socket (a non-blocking read, no round trip) and says whether any named the key since.

Why this is enough for the seat map. A write on any instance deletes the key, and Redis writes the
notices of a change out in the same event-loop turn as its reply to the writer, so by the time the
writer has its answer the notice is on the wire to every watcher; a read here that starts after
the writer answered its client finds it waiting (measured on one host: 40,000 write-then-check
rounds, with and without the CPUs saturated, never missed one). Between hosts the window is the
network's delivery time. A notice for a change the read already saw costs one extra round trip
later, never a stale answer. Nothing is reused unless the connection is up: it is proven alive
with a PING at least every LIVENESS_S (the PONG comes after every notice sent before it), and a
connection that fails voids every stamp taken on it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import redis

from chalicelib.cache import REDIS_ERRORS, RedisUnavailable, use_redis
from chalicelib.settings import get_settings

CLIENT_NAME = "boxoffice-key-watch"
LIVENESS_S = 1.0
MAX_KEYS = 10_000  # keys with a change count kept; beyond that all counts restart (stamps void)

Stamp = tuple[int, int]


class KeyWatch:
    def __init__(self, prefix: Callable[[], str]) -> None:
        self._prefix = prefix
        # Two locks: the connection's is held across socket reads and only ever tried by readers
        # (a reader that finds it taken asks Redis instead of queueing behind a stalled thread);
        # the counts' is never held across I/O.
        self._connection_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._conn: redis.Connection | None = None
        self._target: tuple[str, str] = ("", "")  # the Redis URL and prefix being watched
        self._generation = 0  # a new connection, or counts restarted: every older stamp is void
        self._changes: dict[bytes, int] = {}
        self._proven_at = float("-inf")

    def stamp(self, key: str) -> Stamp | None:
        """Take before reading `key` from Redis; None when changes cannot be watched now. It needs
        no catching up: a notice still unread names a change the read will see anyway, and only
        voids the stamp when it is read (one extra round trip later)."""
        if self._conn is None:
            with self._connection_lock:
                if not self._caught_up():
                    return None
        return self._current(key.encode())

    def unchanged(self, key: str, stamp: Stamp | None) -> bool:
        """True only if Redis has reported no change of `key` since `stamp` was taken."""
        if stamp is None or not self._connection_lock.acquire(blocking=False):
            return False
        try:
            if not self._caught_up():
                return False
        finally:
            self._connection_lock.release()
        return stamp == self._current(key.encode())

    def changed_here(self, key: str) -> None:
        """This process changed `key`: void its stamps now, not when Redis's notice arrives."""
        self._count([key.encode()])

    def close(self) -> None:
        with self._connection_lock:
            self._drop()

    def _current(self, key: bytes) -> Stamp:
        with self._counts_lock:
            return self._generation, self._changes.get(key, 0)

    def _count(self, keys: list[bytes] | None) -> None:
        """None: every key changed (FLUSHALL, a lost connection)."""
        with self._counts_lock:
            if keys is None or len(self._changes) + len(keys) > MAX_KEYS:
                self._generation += 1
                self._changes.clear()
            for key in keys or ():
                self._changes[key] = self._changes.get(key, 0) + 1

    # --- under the connection lock ----------------------------------------------------------

    def _caught_up(self) -> bool:
        """Connected, and every notice Redis has sent so far is counted."""
        if self._conn is not None:
            try:
                self._read_notices()
                return True
            except REDIS_ERRORS:
                pass  # lost (a Redis restart, an idle timeout): connect afresh, below
        try:
            use_redis(lambda _: self._read_notices())  # only this attempt counts as Redis failing
        except RedisUnavailable:
            return False
        return True

    def _read_notices(self) -> None:
        try:
            target = (get_settings().redis_url, self._prefix())
            if self._conn is not None and self._target != target:
                self._drop()  # repointed (tests do): watch the new place
            if self._conn is None:
                self._connect(*target)
            conn = self._conn
            assert conn is not None
            if time.monotonic() - self._proven_at > LIVENESS_S:
                conn.send_command("PING")
                conn.read_response()  # the notices queued before the PONG are counted on the way
                self._proven_at = time.monotonic()
            while conn.can_read(timeout=0):
                conn.read_response(push_request=True)
        except REDIS_ERRORS:
            self._drop()
            raise

    def _connect(self, url: str, prefix: str) -> None:
        conn = redis.ConnectionPool.from_url(
            url,
            protocol=3,
            client_name=CLIENT_NAME,  # how it shows in CLIENT LIST
            socket_connect_timeout=0.1,
            socket_timeout=0.25,
        ).make_connection()
        try:
            conn.connect()
            # redis-py's own client-side cache registers its handler the same way.
            conn._get_parser().set_invalidation_push_handler(self._on_notice)
            conn.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix)
            conn.read_response()
        except REDIS_ERRORS:
            conn.disconnect()
            raise
        self._conn, self._target = conn, (url, prefix)
        self._count(None)
        self._proven_at = time.monotonic()

    def _on_notice(self, message: list) -> None:
        self._count(message[1])  # None for FLUSHALL / FLUSHDB

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._count(None)
            with contextlib.suppress(REDIS_ERRORS):
                conn.disconnect()
