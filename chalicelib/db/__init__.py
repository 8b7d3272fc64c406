"""PostgreSQL access: one small connection pool per process and a retrying unit of work."""

from chalicelib.db.pool import close_pool, get_pool, in_transaction

__all__ = ["close_pool", "get_pool", "in_transaction"]
