"""PostgreSQL access: one small connection pool per process, a retrying unit of work with
after-commit callbacks, and the outbox that use cases write their events to."""

from chalicelib.db.pool import (
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    after_commit,
    close_pool,
    get_pool,
    in_transaction,
)

__all__ = [
    "CommitOutcomeUnknown",
    "DatabaseUnavailable",
    "after_commit",
    "close_pool",
    "get_pool",
    "in_transaction",
]
