"""The connection pool and the unit of work.

A Lambda container keeps its pool between invocations, so a warm request pays no connection set-up.
Every use case runs as one short transaction through `in_transaction`, which retries what is safe to
retry (a dropped connection, a serialization failure, a deadlock) with jittered exponential backoff
and turns a database that stays unreachable into `DatabaseUnavailable` (the web layer answers 503)
instead of a 500.

What must follow a commit, and only a commit (telling the seat-map cache that seats changed), is
registered with `after_commit` from inside the work. Each attempt collects its own callbacks: a
failed attempt's are dropped with it, and they run once the attempt that succeeded has committed
and given its connection back, never after a rollback or a COMMIT whose outcome is unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar
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


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached (or kept failing) within the unit of work's retries: the
    caller should retry shortly. Its message is written for the client (the 503's Message)."""


class CommitOutcomeUnknown(DatabaseUnavailable):
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


# The after-commit callbacks of the attempt under way in this thread; None outside a unit of work.
_after_commit: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "after_commit", default=None
)


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the unit of work under way has committed. Outside `in_transaction`
    (a caller committing a connection of its own: the benchmark's SQL limit, tests) nothing is
    registered: that caller owns what follows its commit."""
    callbacks = _after_commit.get()
    if callbacks is not None:
        callbacks.append(callback)


def _attempt(work: Callable[[psycopg.Connection], T]) -> tuple[T, list[Callable[[], None]]]:
    callbacks: list[Callable[[], None]] = []
    registering = _after_commit.set(callbacks)
    try:
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
    finally:
        _after_commit.reset(registering)
    return result, callbacks


def _run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            # The change is saved: answering an error now would only make the client retry it.
            logger.exception("a step after a commit failed; the change itself is saved")


def in_transaction(work: Callable[[psycopg.Connection], T], *, attempts: int = 4) -> T:
    """Run `work(conn)` in one transaction and commit it; retry transient failures. Then run the
    callbacks the committed attempt registered with `after_commit`."""
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
        result, callbacks = retrying(_attempt, work)
    except PoolTimeout as exc:
        logger.error("no database connection within the pool timeout", extra={"error": repr(exc)})
        raise DatabaseUnavailable("the database is not reachable; retry shortly") from exc
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        logger.error("database unavailable after retries", extra={"error": repr(cause)})
        raise DatabaseUnavailable("the database is not reachable; retry shortly") from cause
    _run_after_commit(callbacks)
    return result
