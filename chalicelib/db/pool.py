"""The connection pool and the unit of work.

A Lambda container keeps its pool between invocations, so a warm request pays no connection set-up.
Every use case runs as one short transaction through `in_transaction`, which retries what is safe to
retry (a dropped connection, a serialization failure, a deadlock) with jittered exponential backoff
and turns a database that stays unreachable into `ServiceUnavailable` (503) instead of a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.log import logger
from chalicelib.settings import get_settings

T = TypeVar("T")

# Short timeouts: a request should fail fast and be retried, never hang on a lock or a dead server.
CONNECTION_OPTIONS = (
    "-c statement_timeout=5000 -c lock_timeout=2000 -c idle_in_transaction_session_timeout=10000"
)

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> ConnectionPool:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                settings = get_settings()
                pool = ConnectionPool(
                    settings.database_url,
                    min_size=1,
                    max_size=settings.db_pool_size,
                    kwargs={
                        "row_factory": dict_row,
                        "options": CONNECTION_OPTIONS,
                        "connect_timeout": 3,
                        "application_name": "boxoffice",
                    },
                    # Waiting longer for a connection than a client would wait for an answer is
                    # pointless: give up after 2 s and answer 503.
                    timeout=2,
                    reconnect_timeout=0,
                    open=False,
                    name="boxoffice",
                )
                pool.open(wait=False)
                _pool = pool
    return _pool


def close_pool() -> None:
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None


class CommitOutcomeUnknown(ServiceUnavailable):
    """The connection broke while COMMIT was in flight: the change may or may not have happened.

    Never retried automatically (a retry could act twice); the client retries, ideally with an
    Idempotency-Key.
    """


TRANSIENT_ERRORS = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.QueryCanceled,
    psycopg.OperationalError,
)


def _attempt(work: Callable[[psycopg.Connection], T]) -> T:
    with get_pool().connection() as conn:
        try:
            result = work(conn)
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise
        try:
            conn.commit()
        except psycopg.OperationalError as exc:
            raise CommitOutcomeUnknown(
                "the database connection was lost while saving; the outcome is unknown"
            ) from exc
        return result


def in_transaction(work: Callable[[psycopg.Connection], T], *, attempts: int = 4) -> T:
    """Run `work(conn)` in one transaction and commit it; retry transient failures."""
    retrying = Retrying(
        # PoolTimeout is an OperationalError too, but not a transient one to retry: the pool has
        # already waited its 2 s for a connection, and each retry would wait them again while the
        # worker is held. A full pool or a dead server answers 503 after that one wait.
        retry=retry_if_exception_type(TRANSIENT_ERRORS) & retry_if_not_exception_type(PoolTimeout),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.02, max=0.5),
        before_sleep=lambda state: logger.warning(
            "retrying a transaction after a transient database error",
            extra={"attempt": state.attempt_number, "error": repr(state.outcome.exception())},
        ),
        reraise=False,
    )
    try:
        return retrying(_attempt, work)
    except PoolTimeout as exc:
        logger.error("no database connection within the pool timeout", extra={"error": repr(exc)})
        raise ServiceUnavailable("the database is not reachable; retry shortly") from exc
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        logger.error("database unavailable after retries", extra={"error": repr(cause)})
        raise ServiceUnavailable("the database is not reachable; retry shortly") from cause
