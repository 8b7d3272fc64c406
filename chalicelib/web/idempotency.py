"""Idempotency-Key on POST /reservations and POST /reservations/{id}/payment.

The first request with a key runs; its answer (status and body) is kept for 24 h and any repeat by
the same user gets exactly that answer. A repeat that arrives while the first is still running
waits up to WAIT_FOR_FIRST_S for the first's answer, then gets 409 IdempotencyKeyInProgress. The
key names one request: the same key by the same user with another method, path or body is 422
IdempotencyKeyReused, on any route.

Only answers worth replaying are kept: a success, and the refusals that record something that
happened to the seats or the hold (409 SeatUnavailable, InvalidState, HoldLimitReached, 410
HoldExpired), which a retry must not turn into a different answer. Any other answer (a 400, 401,
403, 404 or 422, a 429, a 5xx) is not kept: the key is released and a retry runs again. So a 404
for a made-up id costs no Redis memory.

A user has at most MAX_RECORDS_PER_USER live records (running or kept). Beyond that a new key is
not kept: the request runs as if it had no key (what a hold or payment does when Redis is down,
below), so one account cannot fill Redis with fresh keys.

One Redis hash per (user, key): the request's fingerprint, the token of the request running it
(a lease of RUNNING_LEASE_MS, so a crashed process frees the key), then the answer; and per user
a sorted set of their records by expiry time, which counts them. Claiming a key and reading what
it holds is one Lua script, so of any number of concurrent requests exactly one runs. Storing and
releasing check the token, so a request whose lease ran out cannot overwrite a newer one's answer.

Not powertools' idempotency utility: its Redis layer answers a concurrent duplicate with an
immediate "already in progress" error (no waiting for the first answer), stores only returned
values (a 4xx here is an exception), keeps a record in progress without expiry unless it is given
the Lambda context, and raises the same persistence error whether Redis failed before or after the
work ran, which makes failing open without running the work twice impossible to do safely.

While Redis is unavailable keys are not enforced (fail open, logged): a retried hold then gets
409 SeatUnavailable from PostgreSQL instead of a second hold on the same seats, and paying twice
already returns the same sale, so nothing is sold or charged twice.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from chalice.app import Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from chalicelib.cache import RedisUnavailable, key, lua_script, use_redis
from chalicelib.domain.errors import (
    BoxOfficeError,
    HoldExpired,
    HoldLimitReached,
    InvalidState,
    SeatUnavailable,
    ValidationError,
)
from chalicelib.log import logger
from chalicelib.web.errors import IdempotencyKeyInProgress, IdempotencyKeyReused
from chalicelib.web.tokens import Caller

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255
ANSWER_TTL_MS = 24 * 3600 * 1000
# Longer than any request can run (4 transaction attempts of at most 5 s statements, plus
# backoff, under Lambda's 30 s timeout); how long a crashed request's key stays "in progress".
RUNNING_LEASE_MS = 45_000
WAIT_FOR_FIRST_S = 5.0
MAX_RECORDS_PER_USER = 1000
# Refusals kept and replayed like successes: each records what happened to the seats or the hold.
REPLAYED_REFUSALS = frozenset(
    error.code for error in (SeatUnavailable, InvalidState, HoldLimitReached, HoldExpired)
)

# The header's one rule: 1-255 printable ASCII characters. It is checked with this type, and the
# OpenAPI document publishes the same type (IdempotencyHeader).
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_KEY_LENGTH, pattern=r"^[\x20-\x7e]+$")
]
KEY = TypeAdapter(IdempotencyKey)


class IdempotencyHeader(BaseModel):
    """The header as the OpenAPI document describes it, on the routes that take it."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: IdempotencyKey | None = Field(
        None,
        alias="Idempotency-Key",
        description=(
            f"Optional, 1-{MAX_KEY_LENGTH} printable ASCII characters. A repeat with the same key "
            f"by the same user returns the first answer (status and body) for "
            f"{ANSWER_TTL_MS // 3_600_000} h; the same key with a different request answers "
            f"422, and while the first is still running, 409. Kept answers: successes, 409 "
            f"SeatUnavailable, InvalidState and HoldLimitReached, 410 HoldExpired; after any "
            f"other answer the key is free for a retry. A user has at most "
            f"{MAX_RECORDS_PER_USER} live keys; beyond that a key is not kept (the request runs "
            f"as without one)."
        ),
    )


# KEYS[1] = the (user, key) record, KEYS[2] = the user's records by expiry;
# ARGV = fingerprint, token, lease ms, most records per user (0: no cap), record ttl ms.
# {1} when this request now runs it; {2} when the user has too many records to keep another;
# else {0, fingerprint, status, body} (status and body are false while the first still runs).
CLAIM = lua_script(
    """
    if redis.call('EXISTS', KEYS[1]) == 0 then
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        local most = tonumber(ARGV[4])
        if most > 0 and redis.call('ZCARD', KEYS[2]) >= most then return {2} end
        redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'token', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), KEYS[1])
        redis.call('PEXPIRE', KEYS[2], ARGV[5])
        return {1}
    end
    local held = redis.call('HMGET', KEYS[1], 'fingerprint', 'status', 'body')
    return {0, held[1], held[2], held[3]}
    """
)

# KEYS as CLAIM; ARGV = token, status, body, ttl ms. Stores only while the claim is still this
# request's.
STORE = lua_script(
    """
    if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
    redis.call('HSET', KEYS[1], 'status', ARGV[2], 'body', ARGV[3])
    redis.call('HDEL', KEYS[1], 'token')
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), KEYS[1])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
    return 1
    """
)

# KEYS as CLAIM; ARGV = token. Frees the key (nothing worth keeping) if the claim is still ours.
RELEASE = lua_script(
    """
    if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
        redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[2], KEYS[1])
    end
    return 0
    """
)


def idempotency_key(request: Request) -> str | None:
    """The header's value, None if absent; 400 unless 1-255 printable ASCII characters."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    try:
        return KEY.validate_python(value)
    except PydanticValidationError:
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        ) from None


def canonical_body(raw: bytes | None) -> bytes:
    """JSON bodies compared by meaning (key order and spacing do not make another request)."""
    if not raw:
        return b""
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        return raw  # not JSON (or too deep to compare by meaning): compared byte for byte


def fingerprint(method: str, path: str, scope: str, raw_body: bytes | None) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), scope.encode()):
        digest.update(part + b"\n")
    digest.update(canonical_body(raw_body))
    return digest.hexdigest()


def _record_keys(caller: Caller, idem_key: str) -> list[str]:
    """The (user, key) record and the user's records by expiry."""
    # Hashed: the header may hold any printable character, and up to 255 of them.
    digest = hashlib.sha256(idem_key.encode()).hexdigest()
    return [key("idempotency", caller.user_id, digest), key("idempotency", caller.user_id)]


def _request_fingerprint(request: Request, scope: str) -> str:
    path = (request.context or {}).get("path") or request.path
    return fingerprint(request.method, path, scope, request.raw_body)


def once(
    request: Request, caller: Caller, scope: str, act: Callable[[], tuple[int, Any]]
) -> tuple[int, Any]:
    """`act()`'s answer, or the stored answer of the first request with this Idempotency-Key."""
    idem_key = idempotency_key(request)
    if idem_key is None:
        return act()
    record = _record_keys(caller, idem_key)
    expected = _request_fingerprint(request, scope)
    token = uuid.uuid4().hex
    claim_args = [expected, token, RUNNING_LEASE_MS, MAX_RECORDS_PER_USER, ANSWER_TTL_MS]
    deadline = time.monotonic() + WAIT_FOR_FIRST_S
    pause = 0.005
    while True:
        try:
            claim = use_redis(lambda r: CLAIM(record, claim_args, client=r))
        except RedisUnavailable:
            logger.warning("Idempotency-Key not enforced: Redis is unavailable")
            return act()
        if claim[0] == 1:
            return _run_and_keep(record, token, act)
        if claim[0] == 2:
            logger.warning(
                "Idempotency-Key not kept: the user has too many live keys",
                extra={"user_id": caller.user_id, "most": MAX_RECORDS_PER_USER},
            )
            return act()
        _, held_fingerprint, status, body = claim
        if held_fingerprint is not None and held_fingerprint.decode() != expected:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        if status is not None:
            return int(status), json.loads(body)
        if time.monotonic() >= deadline:
            raise IdempotencyKeyInProgress(
                "a request with this Idempotency-Key is still running; retry shortly"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def worth_replaying(status: int, code: str | None = None) -> bool:
    """A success, or a refusal that records what happened to the seats or the hold. Anything
    else changed nothing a retry must not repeat: the key is freed for it."""
    return 200 <= status < 300 or code in REPLAYED_REFUSALS


def _run_and_keep(
    record: list[str], token: str, act: Callable[[], tuple[int, Any]]
) -> tuple[int, Any]:
    try:
        status, body = act()
    except BoxOfficeError as exc:
        if worth_replaying(exc.status, exc.code):
            _keep(record, token, exc.status, exc.body())
        else:
            _release(record, token)
        raise
    except BaseException:
        _release(record, token)
        raise
    if worth_replaying(status):
        _keep(record, token, status, body)
    else:
        _release(record, token)
    return status, body


def _keep(record: list[str], token: str, status: int, body: Any) -> None:
    try:
        stored = use_redis(
            lambda r: STORE(record, [token, status, json.dumps(body), ANSWER_TTL_MS], client=r)
        )
    except RedisUnavailable:
        stored = 0
    if not stored:
        logger.warning("the answer to an Idempotency-Key request could not be kept")


def _release(record: list[str], token: str) -> None:
    try:
        use_redis(lambda r: RELEASE(record, [token], client=r))
    except RedisUnavailable:
        logger.warning("an Idempotency-Key could not be released; it frees when its lease ends")
