"""The challenge's demo, over HTTP, against the process `make run` starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import requests

from tests.e2e.conftest import ROOT, wait_for

pytestmark = pytest.mark.slow


def test_demo_flow(live_system):
    api = live_system.url
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "chalicelib.admin",
            "create-user",
            "--email",
            "boss@cinema.test",
            "--password",
            "manager-pass",
            "--role",
            "MANAGER",
        ],
        cwd=ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(created.stdout)["user"]["role"] == "MANAGER"
    manager = requests.post(
        f"{api}/auth/login", json={"email": "boss@cinema.test", "password": "manager-pass"}
    ).json()["token"]

    session = requests.post(
        f"{api}/sessions",
        headers={"Authorization": f"Bearer {manager}"},
        json={
            "movie": "Filme X - 19:00",
            "room": "Sala 1",
            "starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            "price_cents": 2500,
            "rows": 2,
            "seats_per_row": 8,
        },
    )
    assert session.status_code == 201, session.text
    session = session.json()
    assert session["total_seats"] == 16

    tokens = []
    for name in ("ana", "bruno"):
        signed = requests.post(
            f"{api}/auth/signup",
            json={"email": f"{name}@example.com", "password": "password-123", "name": name},
        )
        assert signed.status_code == 201, signed.text
        tokens.append(signed.json()["token"])

    def race(token: str) -> requests.Response:
        return requests.post(
            f"{api}/reservations",
            headers={"Authorization": f"Bearer {token}"},
            json={"session_id": session["id"], "seats": ["A5"]},
        )

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(race, tokens))
    assert sorted(a.status_code for a in answers) == [201, 409]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["Code"] == "SeatUnavailable" and loser["seats"] == ["A5"]
    winner_index = next(i for i, a in enumerate(answers) if a.status_code == 201)
    winner, reservation = tokens[winner_index], answers[winner_index].json()

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        count = conn.execute(
            "SELECT count(*) FROM reservations WHERE session_id = %s", (session["id"],)
        ).fetchone()[0]
    assert count == 1

    auth = {"Authorization": f"Bearer {winner}"}
    sale = requests.post(f"{api}/reservations/{reservation['id']}/payment", headers=auth)
    assert sale.status_code == 200, sale.text
    history = requests.get(f"{api}/me/purchases", headers=auth).json()["items"]
    assert [p["seats"] for p in history] == [["A5"]]
    assert history[0]["movie"] == "Filme X - 19:00" and history[0]["amount_cents"] == 2500

    receipts = wait_for(
        lambda: requests.get(f"{api}/me/receipts", headers=auth).json()["items"],
        10,
        "receipt recorded by the notifications subscriber",
    )
    assert receipts[0]["sale_id"] == sale.json()["id"]

    # An unpaid hold expires through the delay queue, and the analytics subscriber counts it.
    other = {"Authorization": f"Bearer {tokens[1 - winner_index]}"}
    lapsed = requests.post(
        f"{api}/reservations",
        headers=other,
        json={"session_id": session["id"], "seats": ["B1", "B2"]},
    ).json()
    expires_at = datetime.fromisoformat(lapsed["expires_at"])

    def expiry_counted():
        stats = requests.get(
            f"{api}/sessions/{session['id']}/stats", headers={"Authorization": f"Bearer {manager}"}
        ).json()
        # reservation.expired and seats.released are two events; wait for both to be counted
        return stats if stats["expired_reservations"] == 1 and stats["released_seats"] else None

    stats = wait_for(expiry_counted, 15, "expiry counted by the analytics subscriber")
    assert datetime.now(UTC) - expires_at < timedelta(seconds=10)
    assert stats == {
        "session_id": session["id"],
        "sold_seats": 1,
        "revenue_cents": 2500,
        "expired_reservations": 1,
        "released_seats": 2,
    }
    late = requests.post(f"{api}/reservations/{lapsed['id']}/payment", headers=other)
    assert late.status_code == 410 and late.json()["Code"] == "HoldExpired"
    seats = {
        s["label"]: s["status"]
        for s in requests.get(f"{api}/sessions/{session['id']}/seats").json()["seats"]
    }
    assert seats["A5"] == "SOLD" and seats["B1"] == "AVAILABLE"
    assert requests.get(f"{api}/nope").status_code == 404
