"""Operator commands. Managers are created here, never over HTTP:

python -m chalicelib.admin create-user --email E --password P --role MANAGER

and dead-lettered messages are sent back to their queue once their cause is fixed:

python -m chalicelib.admin redrive --queue notifications|analytics|expiry [--max N]
"""

from __future__ import annotations

import argparse
import json
import sys

from chalicelib.db.migrate import create_database_if_missing, migrate
from chalicelib.domain.errors import BoxOfficeError
from chalicelib.events.redrive import QUEUES as redrive_queues
from chalicelib.events.redrive import redrive as send_back
from chalicelib.settings import for_operator_command
from chalicelib.web.routes.accounts import SignUp
from chalicelib.web.schemas import parse_model


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create or update a user (idempotent)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--name", default=None)
    create.add_argument("--role", choices=["MANAGER", "CUSTOMER"], default="CUSTOMER")
    redrive = commands.add_parser(
        "redrive", help="send a queue's dead-lettered messages back to it"
    )
    redrive.add_argument("--queue", required=True, choices=redrive_queues)
    redrive.add_argument("--max", type=_positive, default=None, help="at most this many")
    args = parser.parse_args(argv)
    if args.command == "redrive":
        print(json.dumps({"queue": args.queue, "moved": send_back(args.queue, args.max)}))
        return 0

    from chalicelib.services import accounts

    try:
        # The same rules as a customer's signup: a manager's password is 8-128 characters too.
        credentials = parse_model(
            SignUp,
            json.dumps(
                {
                    "email": args.email,
                    "password": args.password,
                    "name": args.name or args.email.split("@")[0],
                }
            ),
        )
        url = for_operator_command().database_url
        create_database_if_missing(url)
        migrate(url)
        user, created = accounts.ensure_user(
            email=credentials.email,
            password=credentials.password,
            name=credentials.name,
            role=args.role,
        )
    except BoxOfficeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps({"user": user, "created": created}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
