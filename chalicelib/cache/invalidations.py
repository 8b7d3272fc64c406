"""Telling the cache that a session's seats changed, and keeping what could not be told.

Every hold, cancel, sale and expiry registers `changed()` to run after its commit (the unit of
work's after-commit hook, `chalicelib.db.after_commit`). While Redis is down an invalidation that
could not be sent is kept in this process and sent before this process reads the cache again, so
its own readers never see a map its own writes made stale; until then they read PostgreSQL.
"""

from __future__ import annotations

import threading

from chalicelib.cache import RedisUnavailable, redis_store
from chalicelib.cache.local_copies import watch


class UnsentInvalidations:
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
            redis_store.delete(pending)
            with self._lock:
                self._sessions.difference_update(pending)


unsent = UnsentInvalidations()


def changed(session_id: str) -> None:
    """A hold, cancel, expiry or sale changed this session's seats (called after the commit).
    Deleting the hash both drops the snapshot and voids any rebuild that began before now."""
    try:
        redis_store.delete([session_id])
    except RedisUnavailable:
        unsent.add(session_id)
    finally:
        # Copies this process read before the delete are void here at once, not when Redis's
        # notice of it arrives.
        watch.changed_here(redis_store.snapshot_key(session_id))
