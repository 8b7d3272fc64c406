"""The test run's environment, set before any application module reads it: a database name, a
Redis key prefix and resource names of its own, so parallel runs never meet."""

from __future__ import annotations

import os
from collections.abc import Iterator

RUN_ID = f"{os.getpid()}"
TEST_DATABASE = f"boxoffice_test_{RUN_ID}"
os.environ.update(
    {
        "STAGE": "test",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{TEST_DATABASE}",
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_PREFIX": f"boxoffice-test-{RUN_ID}:",
        "PASSWORD_HASH_PROFILE": "CHEAPEST",
        "JWT_SECRET": "test-secret-of-at-least-thirty-two-characters",
        "RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_HOLDS_PER_MINUTE": "0",
        "RATE_LIMIT_AUTH_PER_MINUTE": "0",
        "DB_POOL_SIZE": "16",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
    }
)

import psycopg  # noqa: E402
import pytest  # noqa: E402

from chalicelib.db import close_pool  # noqa: E402
from chalicelib.db.migrate import create_database_if_missing, migrate  # noqa: E402


def admin_connection() -> psycopg.Connection:
    return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    url = os.environ["DATABASE_URL"]
    create_database_if_missing(url)
    migrate(url)
    yield url
    close_pool()
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium for the browser tests of a module (tests/support/browser.py)."""
    from tests.support.browser import chromium

    with chromium() as launched:
        yield launched
