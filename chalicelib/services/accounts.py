"""Customers sign up and log in; managers are created from the command line only."""

from __future__ import annotations

import functools
import os
import uuid
from typing import Any

import psycopg
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from chalicelib.db import in_transaction
from chalicelib.domain.errors import Conflict, Unauthorized
from chalicelib.settings import DEVELOPMENT_STAGES


@functools.cache
def password_hasher() -> PasswordHasher:
    # Tests and benchmarks may pick argon2's cheapest profile to create thousands of users;
    # everything else uses the library's recommended parameters (RFC 9106 low-memory).
    stage = os.environ.get("STAGE")  # unset is not a development stage
    if os.environ.get("PASSWORD_HASH_PROFILE") == "CHEAPEST" and stage in DEVELOPMENT_STAGES:
        return PasswordHasher.from_parameters(profiles.CHEAPEST)
    return PasswordHasher()


@functools.cache
def _decoy_hash() -> str:
    return password_hasher().hash("decoy password for unknown emails")


def user_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "email": row["email"], "name": row["name"], "role": row["role"]}


def sign_up(*, email: str, password: str, name: str, role: str = "CUSTOMER") -> dict[str, Any]:
    password_hash = password_hasher().hash(password)

    def work(conn: psycopg.Connection) -> dict[str, Any]:
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
        return user_view(row)

    return in_transaction(work)


def authenticate(*, email: str, password: str) -> dict[str, Any]:
    """The user, if the password matches. An unknown email costs the same hash verification as a
    wrong password and gets the same answer, so neither timing nor message reveals accounts."""
    row = in_transaction(
        lambda conn: conn.execute(
            "SELECT * FROM users WHERE lower(email) = lower(%s)", (email,)
        ).fetchone()
    )
    stored = row["password_hash"] if row else _decoy_hash()
    try:
        password_hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("email or password is wrong") from None
    if row is None:
        raise Unauthorized("email or password is wrong")
    return user_view(row)


def ensure_user(*, email: str, password: str, name: str, role: str) -> tuple[dict[str, Any], bool]:
    """Create the user, or bring an existing one to this password and role (idempotent).
    Returns the user and whether it was created."""
    password_hash = password_hasher().hash(password)

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
