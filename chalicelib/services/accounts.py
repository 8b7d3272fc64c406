"""Customers sign up and log in; managers are created from the command line only."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import psycopg
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from chalicelib.db import in_transaction
from chalicelib.domain.errors import BadCredentials, BoxOfficeError, Conflict, StaleToken
from chalicelib.services import views
from chalicelib.settings import DEVELOPMENT_STAGES


@functools.cache
def password_hasher() -> PasswordHasher:
    # Tests and benchmarks may pick argon2's cheapest profile to create thousands of users;
    # everything else uses the library's recommended parameters (RFC 9106 low-memory).
    stage = os.environ.get("STAGE")  # unset is not a development stage
    if os.environ.get("PASSWORD_HASH_PROFILE") == "CHEAPEST" and stage in DEVELOPMENT_STAGES:
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


# Each argon2 hash or verification takes 64 MiB and a core's worth of work for tens of ms (the
# library's RFC 9106 low-memory profile): a burst of logins on one process would otherwise run
# them all at once and need gigabytes. At most HASHING_SLOTS run at a time; a request that finds
# none free within HASHING_WAIT_S answers 503 with Retry-After (the service is busy, not this
# caller over a limit; the per-IP limit on /auth/* is the 429).
HASHING_SLOTS = 4
HASHING_WAIT_S = 1.0
_hashing_slots = threading.BoundedSemaphore(HASHING_SLOTS)


class PasswordHashingBusy(BoxOfficeError):
    code, status = "ServiceUnavailable", 503
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("too many sign-ins at once; retry in a second")


@contextlib.contextmanager
def _hashing_slot() -> Iterator[None]:
    slots = _hashing_slots
    if not slots.acquire(timeout=HASHING_WAIT_S):
        raise PasswordHashingBusy()
    try:
        yield
    finally:
        slots.release()


def _hash(password: str) -> str:
    with _hashing_slot():
        return password_hasher().hash(password)


def _verifies(stored_hash: str, password: str) -> bool:
    with _hashing_slot():
        try:
            return password_hasher().verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


@functools.cache
def _decoy_hash() -> str:
    return _hash("decoy password for unknown emails")


def user_view(row: dict[str, Any]) -> views.User:
    return {"id": str(row["id"]), "email": row["email"], "name": row["name"], "role": row["role"]}


# --- who a bearer token names, checked against the database --------------------------------------


class SignedIn(Protocol):
    """Who a bearer token names (chalicelib.web.tokens.Caller)."""

    @property
    def user_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def token_version(self) -> int: ...


T = TypeVar("T")


def check_token_holder(holder: dict[str, Any] | None, who: SignedIn) -> None:
    """StaleToken (401) unless the token's user (`holder`: its users row, None if there is none)
    still has the role and the token version the token carries. A password or role change bumps
    the version (a trigger in the database), so this ends every token issued before it."""
    if holder is None or (holder["role"], holder["token_version"]) != (who.role, who.token_version):
        raise StaleToken()


def check_signed_in(conn: psycopg.Connection, who: SignedIn) -> None:
    """`check_token_holder` with one indexed read, inside the use case's own transaction."""
    try:
        user_id = str(uuid.UUID(who.user_id))
    except ValueError:
        raise StaleToken() from None
    holder = conn.execute(
        "SELECT role, token_version FROM users WHERE id = %s", (user_id,)
    ).fetchone()
    check_token_holder(holder, who)


def on_behalf_of(
    who: SignedIn | None, work: Callable[[psycopg.Connection], T]
) -> Callable[[psycopg.Connection], T]:
    """`work`, preceded in its transaction by the check that `who`'s token is still good. None is
    a trusted caller (the seed command, the benchmark), checked by nobody."""
    if who is None:
        return work

    def checked(conn: psycopg.Connection) -> T:
        check_signed_in(conn, who)
        return work(conn)

    return checked


def check_signed_in_now(who: SignedIn) -> None:
    """The same check in a transaction of its own, for a request refused before any use case
    runs (a token whose role may not call the route: 401 if the token is stale, not 403)."""
    in_transaction(lambda conn: check_signed_in(conn, who))


# --- accounts ------------------------------------------------------------------------------------


def sign_up(
    *, email: str, password: str, name: str, role: str = "CUSTOMER"
) -> tuple[dict[str, Any], int]:
    """The new user and its token version."""
    password_hash = _hash(password)

    def work(conn: psycopg.Connection) -> tuple[dict[str, Any], int]:
        row = conn.execute(
            """
            INSERT INTO users (id, email, name, password_hash, role)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (lower(email)) DO NOTHING
            RETURNING *
            """,
            (str(uuid.uuid4()), email, name, password_hash, role),
        ).fetchone()
        if row is None:
            raise Conflict("an account with this email already exists")
        return user_view(row), row["token_version"]

    return in_transaction(work)


def authenticate(*, email: str, password: str) -> tuple[dict[str, Any], int]:
    """The user and its token version, if the password matches. An unknown email costs the same
    hash verification as a wrong password and gets the same answer, so neither timing nor message
    reveals accounts."""
    row = in_transaction(
        lambda conn: conn.execute(
            "SELECT * FROM users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
    )
    stored = row["password_hash"] if row else _decoy_hash()
    if not _verifies(stored, password) or row is None:
        raise BadCredentials()
    return user_view(row), row["token_version"]


def ensure_user(*, email: str, password: str, name: str, role: str) -> tuple[dict[str, Any], bool]:
    """Create the user, or bring an existing one to this password and role (idempotent).
    Returns the user and whether it was created. Run again with the same password and role it
    changes nothing, so the user's tokens stay valid; a new password or role bumps the user's
    token version (the users_token_version trigger), which ends every token issued before."""
    existing = in_transaction(
        lambda conn: conn.execute(
            "SELECT * FROM users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
    )
    if (
        existing is not None
        and existing["role"] == role
        and _verifies(existing["password_hash"], password)
    ):
        return user_view(existing), False
    password_hash = _hash(password)

    def work(conn: psycopg.Connection) -> tuple[dict[str, Any], bool]:
        row = conn.execute(
            """
            INSERT INTO users (id, email, name, password_hash, role)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (lower(email)) DO UPDATE
               SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role
            RETURNING *, (xmax = 0) AS created
            """,
            (str(uuid.uuid4()), email, name, password_hash, role),
        ).fetchone()
        return user_view(row), row["created"]

    return in_transaction(work)
