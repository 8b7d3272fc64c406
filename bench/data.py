"""The benchmark's world: its own database, users made in bulk, sessions, and the hold plans."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.conninfo import conninfo_to_dict

TABLES = (
    "outbox, processed_events, receipts, session_stats, reservation_seats, seats, sales, "
    "reservations, sessions, users"
)


def database_name(database_url: str) -> str:
    return conninfo_to_dict(database_url).get("dbname") or ""


def prepare_database(database_url: str) -> None:
    """Create and migrate the benchmark database, then empty it. Refuses any database whose name
    does not say it is a benchmark's: this truncates every table."""
    from chalicelib.db.migrate import create_database_if_missing, migrate

    name = database_name(database_url)
    if "bench" not in name:
        raise SystemExit(f"refusing to empty database {name!r}: its name must contain 'bench'")
    create_database_if_missing(database_url)
    migrate(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


def clean_redis(prefix: str) -> int:
    """Delete this benchmark's keys only (never FLUSHALL: others share this Redis)."""
    from chalicelib.cache import redis_client

    client = redis_client()
    removed = 0
    batch: list[bytes] = []
    for name in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(name)
        if len(batch) >= 500:
            removed += client.delete(*batch)
            batch.clear()
    if batch:
        removed += client.delete(*batch)
    return removed


@dataclass(frozen=True)
class User:
    id: str
    token: str


def make_users(database_url: str, count: int, role: str = "CUSTOMER") -> list[User]:
    """`count` users in one COPY, all with the same (cheap) password hash, and their tokens."""
    from chalicelib.services.accounts import password_hasher
    from chalicelib.web import tokens

    password_hash = password_hasher().hash("bench-password")
    run = uuid.uuid4().hex[:8]
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy(
            "COPY users (id, email, name, password_hash, role) FROM STDIN"
        ) as copy:
            for n, user_id in enumerate(ids):
                copy.write_row(
                    (user_id, f"bench-{run}-{n}@example.com", f"bench {n}", password_hash, role)
                )
        conn.commit()
    return [User(user_id, tokens.issue(user_id, role)) for user_id in ids]


def make_sessions(count: int, rows: int, seats_per_row: int, movie: str) -> list[str]:
    from chalicelib.services import sessions

    starts_at = datetime.now(UTC) + timedelta(days=30)
    return [
        sessions.create_session(
            movie=f"{movie} {n}",
            room="Bench",
            starts_at=starts_at + timedelta(minutes=n),
            price_cents=2500,
            rows=rows,
            seats_per_row=seats_per_row,
            created_by=None,
        )["id"]
        for n in range(count)
    ]


def labels(rows: int, seats_per_row: int) -> list[str]:
    return [f"{chr(ord('A') + r)}{n}" for r in range(rows) for n in range(1, seats_per_row + 1)]


ROWS, SEATS_PER_ROW = 20, 20  # 400-seat rooms for the distinct-seat and read scenarios


def distinct_plan(
    holds: int, users: list[User], rng: random.Random, movie: str, *, pay_share: float = 0.5
) -> tuple[list[tuple[User, str, list[str], bool]], list[str]]:
    """`holds` holds of 1-4 adjacent seats that never overlap, spread over as many 400-seat
    sessions as they need, in random order; each paid with probability `pay_share`."""
    grid = labels(ROWS, SEATS_PER_ROW)
    groups: list[tuple[int, list[str]]] = []
    session_count = 0
    while len(groups) < holds:
        i = 0
        while i < len(grid):
            size = rng.randint(1, 4)
            row_end = (i // SEATS_PER_ROW + 1) * SEATS_PER_ROW  # adjacent: within one row
            groups.append((session_count, grid[i : min(i + size, row_end)]))
            i = min(i + size, row_end)
        session_count += 1
    groups = groups[:holds]
    session_ids = make_sessions(session_count, ROWS, SEATS_PER_ROW, movie)
    rng.shuffle(groups)
    # Drawn, not every other one: clients take every k-th job, and a fixed stride would give some
    # clients only paid holds and the others none.
    plan = [
        (users[rng.randrange(len(users))], session_ids[s], seats, rng.random() < pay_share)
        for s, seats in groups
    ]
    return plan, session_ids


def flash_plan(
    buyers: list[User], rng: random.Random, movie: str, seats: list[str] | None = None
) -> tuple[list[tuple[User, str, list[str], bool]], str]:
    """Every buyer wants 1 or 2 of the same 16 seats (or exactly `seats`: a hot seat); whoever
    gets a hold pays at once."""
    (session_id,) = make_sessions(1, 2, 8, movie)
    grid = labels(2, 8)
    plan = [
        (buyer, session_id, seats or rng.sample(grid, rng.randint(1, 2)), True) for buyer in buyers
    ]
    return plan, session_id
