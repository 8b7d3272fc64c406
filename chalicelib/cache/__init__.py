"""The Redis connection: one client (and pool) per process, with timeouts short enough that a dead
Redis costs milliseconds. Redis only ever speeds things up; PostgreSQL decides who holds a seat.

Every use goes through `use_redis`, behind a small circuit breaker: after a failure the process
skips Redis for COOL_DOWN_SECONDS (the caller takes its PostgreSQL-only path at once) instead of
paying a connect or read timeout on every request while Redis is down.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.commands.core import Script

from chalicelib.log import logger
from chalicelib.settings import get_settings

REDIS_ERRORS = (redis.RedisError, OSError)
COOL_DOWN_SECONDS = 1.5

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis failed just now, or is being skipped after a recent failure: degrade, do not fail."""


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        get_settings().redis_url,
        socket_connect_timeout=0.1,
        socket_timeout=0.25,
        health_check_interval=30,
        decode_responses=False,
        retry_on_timeout=False,
    )


def key(*parts: str) -> str:
    """A key in this stage's (or this test run's) namespace."""
    return get_settings().redis_prefix + ":".join(parts)


class CircuitBreaker:
    """Closed while Redis answers. A failure opens it for `cool_down` seconds, during which
    `allow()` says no; then one caller is let through to probe, and the others keep skipping until
    that probe either succeeds (closed again) or fails (open for another cool-down)."""

    def __init__(
        self, cool_down: float = COOL_DOWN_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cool_down = cool_down
        self._clock = clock
        self._lock = threading.Lock()
        self._retry_at: float | None = None  # None while closed

    @property
    def is_open(self) -> bool:
        return self._retry_at is not None

    def allow(self) -> bool:
        if self._retry_at is None:
            return True
        with self._lock:
            if self._retry_at is None:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._cool_down  # this caller probes; the rest keep skipping
            return True

    def succeeded(self) -> bool:
        """Close. True when it was open, so the caller logs the recovery once."""
        if self._retry_at is None:
            return False
        with self._lock:
            was_open = self._retry_at is not None
            self._retry_at = None
            return was_open

    def failed(self) -> bool:
        """Open (again). True when it was closed, so the caller logs the outage once."""
        with self._lock:
            was_closed = self._retry_at is None
            self._retry_at = self._clock() + self._cool_down
            return was_closed


breaker = CircuitBreaker()


def use_redis(work: Callable[[redis.Redis], T]) -> T:
    """`work(client)`, or RedisUnavailable if Redis is skipped or fails."""
    if not breaker.allow():
        raise RedisUnavailable("Redis failed moments ago; skipping it for now")
    try:
        result = work(redis_client())
    except REDIS_ERRORS as exc:
        if breaker.failed():
            logger.warning(
                "Redis is unreachable: seat maps come from PostgreSQL, and idempotency keys and "
                "rate limits are not enforced until it answers again",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
        raise RedisUnavailable(str(exc)) from exc
    if breaker.succeeded():
        logger.info("Redis answers again: cache, idempotency keys and rate limits are back")
    return result


def reset() -> None:
    """Forget the client and the breaker's state (tests that repoint REDIS_URL)."""
    redis_client.cache_clear()
    breaker.succeeded()


# Scripts are registered on a client that never connects: redis-py's `Script` takes only the text's
# encoding from it, and each call passes the client `use_redis` hands over
# (`SCRIPT(keys, args, client=r)`), so a client replaced by `reset()` needs no new registration.
_script_registry = redis.Redis()


def lua_script(text: str) -> Script:
    """A Lua script Redis runs atomically: EVALSHA, loading the text on a server that has not seen
    it yet (a restart or failover empties the script cache). redis-py's `register_script`."""
    return _script_registry.register_script(text)
