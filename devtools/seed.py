"""`make seed`: demo data for a fresh database: a manager, two customers and three screenings.
Idempotent for the users; each run adds three new sessions. Prints the logins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from devtools.stage import apply_stage_defaults

MANAGER = ("manager@boxoffice.local", "manager-pass-123")
CUSTOMERS = (
    ("ana@boxoffice.local", "customer-pass-123"),
    ("bruno@boxoffice.local", "customer-pass-123"),
)


def main() -> None:
    apply_stage_defaults("local")
    from chalicelib.db.migrate import create_database_if_missing, migrate
    from chalicelib.services import accounts, sessions
    from chalicelib.settings import get_settings

    url = get_settings().database_url
    create_database_if_missing(url)
    migrate(url)
    manager, _ = accounts.ensure_user(
        email=MANAGER[0], password=MANAGER[1], name="Manager", role="MANAGER"
    )
    for email, password in CUSTOMERS:
        accounts.ensure_user(
            email=email, password=password, name=email.split("@")[0], role="CUSTOMER"
        )
    tonight = datetime.now(UTC).replace(hour=19, minute=0, second=0, microsecond=0)
    made = []
    for days, (movie, rows, per_row, price) in enumerate(
        [
            ("Filme X - 19:00", 2, 8, 2500),
            ("Blockbuster Premiere", 20, 20, 4000),
            ("Matinee Classics", 5, 10, 1500),
        ],
        start=1,
    ):
        made.append(
            sessions.create_session(
                movie=movie,
                room=f"Sala {days}",
                starts_at=tonight + timedelta(days=days),
                price_cents=price,
                rows=rows,
                seats_per_row=per_row,
                created_by=manager["id"],
            )
        )
    print(
        json.dumps(
            {
                "manager": {"email": MANAGER[0], "password": MANAGER[1]},
                "customers": [{"email": e, "password": p} for e, p in CUSTOMERS],
                "sessions": [
                    {"id": s["id"], "movie": s["movie"], "total_seats": s["total_seats"]}
                    for s in made
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
