"""Rate limits shared by every instance: a sliding-window log per caller in Redis.

The contract: a caller may send the limit's number of requests back to back, then gets 429 until
the window frees one; refused requests do not count; no extra burst at a window's edge. So each
caller has a sorted set of the times of its requests admitted in the last WINDOW_MS, and a request
is admitted only while fewer than `limit` are in it. Checking and recording happen in one Lua
script, so two requests on two instances can never both take the last slot, and the clock is
Redis's own (TIME): one clock for every instance.

Every route is limited, GET /health included: each call costs a PostgreSQL connection and a Redis
ping. It still answers while Redis is down, because the limits then fail open.

While Redis is unavailable the limits fail open: requests proceed (PostgreSQL alone keeps the
seats right) and the outage is logged once by chalicelib.cache.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import uuid

from chalice.app import Request

from chalicelib.cache import RedisUnavailable, key, lua_script, use_redis
from chalicelib.settings import get_settings
from chalicelib.web import tokens
from chalicelib.web.errors import RateLimited
from chalicelib.web.tokens import Caller

WINDOW_MS = 60_000

# KEYS[1] = the caller's log; ARGV = limit, window ms, a unique member for this request.
# Returns 0 when admitted (and recorded), otherwise the milliseconds until the window frees a
# slot: when the entry whose leaving brings the count below the limit ages out. A refusal
# records nothing.
ADMIT = lua_script(
    """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local limit = tonumber(ARGV[1])
    local window = tonumber(ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
    local used = redis.call('ZCARD', KEYS[1])
    if used < limit then
        redis.call('ZADD', KEYS[1], now, ARGV[3])
        redis.call('PEXPIRE', KEYS[1], window)
        return 0
    end
    local frees = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
    return tonumber(frees[2]) + window - now
    """
)

# What this request was recorded under by `check`, so a hold refused by the holds limit can
# hand its slot back (refused requests do not count). Set afresh by every request.
_admitted: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "rate_limit_admitted", default=None
)


def retry_after_seconds(wait_ms: int) -> int:
    """Retry-After in whole seconds, never 0 (the slot is not free yet) and at most 60."""
    return min(60, max(1, math.ceil(wait_ms / 1000)))


def caller_id(request: Request) -> str:
    """The user for a valid bearer token; otherwise the client's IP address."""
    caller = tokens.caller_if_any(request.headers.get("authorization"))
    if caller is not None:
        return f"user:{caller.user_id}"
    return f"ip:{_client_ip(request)}"


def _client_ip(request: Request) -> str:
    identity = (request.context or {}).get("identity") or {}
    return identity.get("sourceIp") or "unknown"


def _admit(log_key: str, limit: int) -> str | None:
    """The member recorded for this request, or None if Redis was unavailable (fail open).
    Raises RateLimited when the caller is over the limit."""
    member = uuid.uuid4().hex
    try:
        wait_ms = use_redis(lambda r: ADMIT([log_key], [limit, WINDOW_MS, member], client=r))
    except RedisUnavailable:
        return None
    if wait_ms:
        raise RateLimited(retry_after_seconds(int(wait_ms)))
    return member


def check(request: Request) -> None:
    """Every route: RATE_LIMIT_PER_MINUTE per caller."""
    _admitted.set(None)
    limit = get_settings().rate_limit_per_minute
    if limit == 0:
        return
    log_key = key("rate", "all", caller_id(request))
    member = _admit(log_key, limit)
    if member is not None:
        _admitted.set((log_key, member))


def check_sign_in(request: Request) -> None:
    """POST /auth/signup and /auth/login: RATE_LIMIT_AUTH_PER_MINUTE per client IP, together.
    Tighter than the general limit: each costs a password hash, and signups are free."""
    limit = get_settings().rate_limit_auth_per_minute
    if limit == 0:
        return
    try:
        _admit(key("rate", "auth", _client_ip(request)), limit)
    except RateLimited:
        _give_back_request_slot()
        raise


def check_holds(caller: Caller) -> None:
    """POST /reservations: RATE_LIMIT_HOLDS_PER_MINUTE per user."""
    limit = get_settings().rate_limit_holds_per_minute
    if limit == 0:
        return
    try:
        _admit(key("rate", "holds", caller.user_id), limit)
    except RateLimited:
        _give_back_request_slot()
        raise


def _give_back_request_slot() -> None:
    admitted = _admitted.get()
    if admitted is None:
        return
    log_key, member = admitted
    with contextlib.suppress(RedisUnavailable):  # at worst the refused hold counts once
        use_redis(lambda r: r.zrem(log_key, member))
    _admitted.set(None)
