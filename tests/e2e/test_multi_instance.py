"""Three `make run` processes on different ports share PostgreSQL, Redis and one AWS endpoint;
300 clients spread over them race for the same 16 seats. Exactly 16 seats end up held or sold,
none twice, and the audit of bench/audit.py is clean."""

from __future__ import annotations

import random
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from bench.audit import audit
from tests.e2e.conftest import start_system, stop_system
from tests.support.data import live_token, session_body

pytestmark = pytest.mark.slow

CLIENTS = 300
LABELS = [f"{row}{n}" for row in "AB" for n in range(1, 9)]


def aws_endpoint_of(system) -> str:
    match = re.search(r"boxoffice listening on \S+ \(.*AWS (http://[^)\s]+)\)", system.log())
    assert match, f"no listening line in the log:\n{system.log()[-2000:]}"
    return match.group(1)


def test_three_instances_300_clients_16_seats(tmp_path, database):
    from chalicelib.services import accounts

    first = start_system(tmp_path, name="instance-1")
    shared = {"AWS_ENDPOINT_URL": aws_endpoint_of(first)}
    systems = [first]
    try:
        systems += [start_system(tmp_path, shared, name=f"instance-{n}") for n in (2, 3)]
        assert len({s.url for s in systems}) == 3
        manager, _ = accounts.ensure_user(
            email="multi-manager@example.com", password="manager-pass", name="M", role="MANAGER"
        )
        manager_token = live_token(manager["id"], "MANAGER")
        session = requests.post(
            f"{first.url}/sessions",
            json=session_body(),
            headers={"Authorization": f"Bearer {manager_token}"},
            timeout=10,
        ).json()
        buyers = []
        for n in range(CLIENTS):
            user, _ = accounts.ensure_user(
                email=f"racer{n}@example.com", password="racer-pass", name=f"R{n}", role="CUSTOMER"
            )
            buyers.append(live_token(user["id"], "CUSTOMER"))

        # One seat each, every seat asked for by many clients: a seat stays free only if every
        # request for it lost, which can happen only to a request that found it taken.
        wanted = [LABELS[i % len(LABELS)] for i in range(CLIENTS)]
        random.Random(7).shuffle(wanted)
        start = threading.Barrier(CLIENTS, timeout=60)

        def client(i: int) -> tuple[int, int, str | None]:
            api = systems[i % 3].url
            auth = {"Authorization": f"Bearer {buyers[i]}"}
            with requests.Session() as http:
                start.wait()
                held = http.post(
                    f"{api}/reservations",
                    json={"session_id": session["id"], "seats": [wanted[i]]},
                    headers=auth,
                    timeout=30,
                )
                if held.status_code == 201 and i % 2 == 0:
                    paid = http.post(
                        f"{api}/reservations/{held.json()['id']}/payment", headers=auth, timeout=30
                    )
                    assert paid.status_code == 200, paid.text
                return i % 3, held.status_code, held.json().get("Code")

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            outcomes = list(pool.map(client, range(CLIENTS)))

        statuses = Counter(status for _, status, _ in outcomes)
        assert statuses == Counter({201: 16, 409: CLIENTS - 16}), statuses
        assert {code for _, status, code in outcomes if status == 409} == {"SeatUnavailable"}
        per_instance = Counter(instance for instance, _, _ in outcomes)
        assert per_instance == Counter({0: 100, 1: 100, 2: 100})

        with psycopg.connect(database, autocommit=True) as conn:
            taken = conn.execute(
                """
                SELECT count(*) FILTER (WHERE sale_id IS NOT NULL),
                       count(*) FILTER (WHERE hold_id IS NOT NULL AND held_until > now())
                  FROM seats WHERE session_id = %s
                """,
                (session["id"],),
            ).fetchone()
            assert sum(taken) == 16, taken
            found = audit(conn)
        assert not any(found.values()), found
        seat_map = requests.get(f"{systems[2].url}/sessions/{session['id']}/seats", timeout=10)
        assert {s["status"] for s in seat_map.json()["seats"]} <= {"RESERVED", "SOLD"}
    finally:
        for system in reversed(systems):  # the first one hosts the shared AWS endpoint
            stop_system(system)
