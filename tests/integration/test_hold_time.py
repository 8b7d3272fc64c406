"""A hold is valid only until expires_at, whether or not any expiry job has run."""

from __future__ import annotations

import time

import pytest


@pytest.mark.slow
def test_unpaid_hold_frees_seats_after_hold_seconds(client, make_user, make_session, hold_seconds):
    hold_seconds(1)
    session = make_session()
    first, second = make_user(), make_user()
    body = {"session_id": session["id"], "seats": ["A1", "A2"]}
    held = client.post("/reservations", body, token=first["token"])
    assert held.status == 201
    assert client.post("/reservations", body, token=second["token"]).status == 409

    time.sleep(1.2)
    seats = {
        s["label"]: s["status"]
        for s in client.get(f"/sessions/{session['id']}/seats").body["seats"]
    }
    assert seats["A1"] == seats["A2"] == "AVAILABLE"
    assert client.post("/reservations", body, token=second["token"]).status == 201

    late = client.post(f"/reservations/{held.body['id']}/payment", token=first["token"])
    assert late.status == 410 and late.code == "HoldExpired"
    seats = {
        s["label"]: s["status"]
        for s in client.get(f"/sessions/{session['id']}/seats").body["seats"]
    }
    assert seats["A1"] == "RESERVED"
