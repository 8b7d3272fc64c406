"""Integration fixtures: a throwaway PostgreSQL database, a private Redis key prefix, and a moto
server reached over real HTTP, all created for this run and removed after it."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from chalicelib.settings import get_settings
from devtools.provision import provision
from tests.support.aws import aws_client, start_aws_endpoint
from tests.support.data import session_body

TABLES = (
    "outbox, processed_events, receipts, session_stats, reservation_seats, seats, sales, "
    "reservations, sessions, users"
)


@pytest.fixture(scope="session", autouse=True)
def aws_endpoint() -> Iterator[str]:
    """The embedded AWS endpoint over real HTTP, provisioned from infra/ like the local system."""
    with start_aws_endpoint(get_settings().stage) as url:
        yield url


@pytest.fixture
def stage() -> str:
    """A stage of its own for a test that provisions the template again: its own queues."""
    return f"infra-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def aws(aws_endpoint: str) -> Callable[[str], Any]:
    """boto3 clients on the test endpoint: aws("sqs"), aws("sns")."""
    return lambda service: aws_client(service, aws_endpoint)


@pytest.fixture
def outputs(aws_endpoint: str, stage: str) -> dict[str, str]:
    """The template provisioned for `stage`: its Outputs (queue URLs, topic ARN)."""
    return provision(stage, endpoint_url=aws_endpoint, region="us-east-1")


def delete_run_keys() -> None:
    """Remove every Redis key of this run (its own prefix; other runs share the server)."""
    from chalicelib.cache import redis_client

    try:
        client = redis_client()
        keys = list(client.scan_iter(match=f"{os.environ['REDIS_PREFIX']}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:
        pass  # a test may have pointed REDIS_URL at a dead port


@pytest.fixture(scope="session", autouse=True)
def redis_keys() -> Iterator[None]:
    yield
    delete_run_keys()


@pytest.fixture(autouse=True)
def clean_state(database: str, aws_endpoint: str) -> Iterator[None]:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    delete_run_keys()
    yield


@pytest.fixture
def db(database: str) -> Iterator[psycopg.Connection]:
    """A plain autocommit connection for assertions on what the database holds."""
    from psycopg.rows import dict_row

    with psycopg.connect(database, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="session")
def app_module() -> Any:
    import app

    return app


@pytest.fixture
def client(app_module: Any):
    from tests.support.app_client import AppClient

    return AppClient(app_module.app)


@pytest.fixture
def make_user() -> Callable[..., dict[str, Any]]:
    from chalicelib.services import accounts
    from chalicelib.web import tokens

    counter = iter(range(1_000_000))

    def create(role: str = "CUSTOMER", email: str | None = None) -> dict[str, Any]:
        email = email or f"{role.lower()}{next(counter)}@example.com"
        user, _ = accounts.ensure_user(
            email=email, password="password123", name=email.split("@")[0], role=role
        )
        return {**user, "token": tokens.issue(user["id"], role, token_version=0)}

    return create


@pytest.fixture
def manager(make_user) -> dict[str, Any]:
    return make_user("MANAGER")


@pytest.fixture
def customer(make_user) -> dict[str, Any]:
    return make_user("CUSTOMER")


@pytest.fixture
def make_session(client, manager) -> Callable[..., dict[str, Any]]:
    def create(**overrides: Any) -> dict[str, Any]:
        answer = client.post("/sessions", session_body(**overrides), token=manager["token"])
        assert answer.status == 201, answer.body
        return answer.body

    return create


@pytest.fixture
def hold_seconds(monkeypatch) -> Callable[[int], None]:
    """Change HOLD_SECONDS for one test."""

    def set_to(seconds: int) -> None:
        monkeypatch.setenv("HOLD_SECONDS", str(seconds))
        get_settings.cache_clear()

    yield set_to
    get_settings.cache_clear()


@pytest.fixture
def seats_per_customer(monkeypatch) -> Callable[[int], None]:
    """Change SEATS_PER_CUSTOMER for one test (0: no cap)."""

    def set_to(seats: int) -> None:
        monkeypatch.setenv("SEATS_PER_CUSTOMER", str(seats))
        get_settings.cache_clear()

    yield set_to
    get_settings.cache_clear()


@pytest.fixture
def outbox_relay() -> Iterator[None]:
    """The outbox relay running, as the relay function runs it (events reach SNS and SQS)."""
    from chalicelib.events import relay

    stop = threading.Event()
    thread = threading.Thread(
        target=relay.run, args=(lambda: not stop.is_set(),), name="outbox-relay", daemon=True
    )
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
