"""The Redis connection: one client (and pool) per process, with timeouts short enough that a dead
Redis costs milliseconds. Redis only ever speeds things up; PostgreSQL decides who holds a seat."""

from __future__ import annotations

import functools

import redis

from chalicelib.settings import get_settings

REDIS_ERRORS = (redis.RedisError, OSError)


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
