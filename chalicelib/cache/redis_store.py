"""The snapshots in Redis, kept coherent with PostgreSQL by three Lua scripts: read-or-claim,
store-if-stamped and release.

Per session, one Redis hash `seatmap:{id}` holds the current snapshot (`snap`) and the token of the
rebuild that stored it (`build`); a second key is the session's rebuild lock. Every commit that
changes a session's seats deletes both (`chalicelib.cache.invalidations`). A rebuild first stamps
the hash with its own token, then reads PostgreSQL, then stores its snapshot only if its token is
still there. A delete in between, i.e. a commit the rebuild may have missed, removed the token, so
that snapshot is thrown away and the next reader rebuilds. A stored snapshot is therefore never
older than the last invalidation before it. The hash also expires after SNAPSHOT_TTL_MS, a
backstop for a process that died between its commit and its invalidation.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalicelib.cache import RedisUnavailable, key, lua_script, use_redis
from chalicelib.cache.snapshots import Snapshot

SNAPSHOT_TTL_MS = 60_000
REBUILD_LEASE_MS = 2_000

# READ_OR_CLAIM's answers.
CURRENT = 0  # the snapshot the caller already holds is still the current one
ANOTHER = 1  # another snapshot is current: {1, snapshot, its build token}
REBUILD = 2  # the caller now owns the rebuild
REBUILDING = 3  # another reader owns the rebuild


def snapshot_key(session_id: str) -> str:
    # A hash tag, so the hash and its rebuild lock live in the same cluster slot (the scripts
    # touch both).
    return key("seatmap", f"{{{session_id}}}")


def keys(session_id: str) -> list[str]:
    """The snapshot's hash and the rebuild lock."""
    snapshot = snapshot_key(session_id)
    return [snapshot, f"{snapshot}:rebuild"]


# ARGV = this reader's token, the lease in ms, the build token of the snapshot this process already
# holds ('' if none). Owning the rebuild means the rebuild lock plus the hash stamped with this
# reader's token; the stamp expires with the lease, so a rebuilder that dies leaves nothing behind
# for long.
READ_OR_CLAIM = lua_script(
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

# Store the snapshot only if the hash still carries this rebuild's stamp (no invalidation since
# the stamp, no newer rebuild), and release the lock if it is still ours. Returns 1 if stored.
STORE_IF_STAMPED = lua_script(
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

RELEASE = lua_script(
    """
    if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
    return 0
    """
)


def read_or_claim(session_id: str, token: str, known_build: bytes) -> list[Any]:
    """One of the answers above. Raises RedisUnavailable."""
    return use_redis(
        lambda r: READ_OR_CLAIM(keys(session_id), [token, REBUILD_LEASE_MS, known_build], client=r)
    )


def store_if_stamped(session_id: str, token: str, snapshot: Snapshot) -> bool:
    """Whether the snapshot was stored as the current one."""
    try:
        return bool(
            use_redis(
                lambda r: STORE_IF_STAMPED(
                    keys(session_id), [token, snapshot.encode(), SNAPSHOT_TTL_MS], client=r
                )
            )
        )
    except RedisUnavailable:
        return False


def release(session_id: str, token: str) -> None:
    """Give up a rebuild; if Redis cannot be told, the lease runs out on its own."""
    with contextlib.suppress(RedisUnavailable):
        use_redis(lambda r: RELEASE(keys(session_id), [token], client=r))


def delete(session_ids: list[str]) -> None:
    """Drop these sessions' snapshots and void any rebuild of them under way. Raises
    RedisUnavailable."""
    use_redis(lambda r: r.delete(*[k for sid in session_ids for k in keys(sid)]))
