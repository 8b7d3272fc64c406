"""Redis stopped or hung: the box office keeps selling from PostgreSQL alone, fast."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from chalicelib import cache
from chalicelib.cache import invalidations
from chalicelib.settings import get_settings
from devtools.net import free_port


def use_redis_at(monkeypatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    get_settings.cache_clear()
    cache.reset()


@pytest.fixture
def redis_down() -> Iterator[None]:
    """REDIS_URL points at a closed port; limits on, so failing open is visible."""
    port = free_port()
    with pytest.MonkeyPatch.context() as m:
        m.setenv("RATE_LIMIT_PER_MINUTE", "2")
        m.setenv("RATE_LIMIT_HOLDS_PER_MINUTE", "1")
        use_redis_at(m, f"redis://127.0.0.1:{port}/0")
        yield
    get_settings.cache_clear()
    cache.reset()
    invalidations.unsent._sessions.clear()


@pytest.fixture
def redis_hung() -> Iterator[None]:
    """A Redis that accepts connections and never answers: the worst case for timeouts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    with pytest.MonkeyPatch.context() as m:
        use_redis_at(m, f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
        yield
    listener.close()
    get_settings.cache_clear()
    cache.reset()
    invalidations.unsent._sessions.clear()


def hold(client, customer, session_id, seats, **kw):
    return client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"], **kw
    )


def test_holds_payments_and_cancels_work_and_maps_are_served(
    client, customer, make_user, make_session, redis_down
):
    session = make_session()
    held = hold(client, customer, session["id"], ["A1", "A2"], headers={"Idempotency-Key": "k"})
    assert held.status == 201  # idempotency fails open
    paid = client.post(
        f"/reservations/{held.body['id']}/payment",
        token=customer["token"],
        headers={"Idempotency-Key": "p"},
    )
    assert paid.status == 200
    other = make_user()
    to_cancel = hold(client, other, session["id"], ["B1"]).body
    assert client.delete(f"/reservations/{to_cancel['id']}", token=other["token"]).status == 200
    kept = hold(client, other, session["id"], ["B2"])
    assert kept.status == 201  # over the holds limit of 1: the limit fails open too

    seats = client.get(f"/sessions/{session['id']}/seats")
    assert seats.status == 200
    statuses = {s["label"]: s["status"] for s in seats.body["seats"]}
    assert statuses["A1"] == statuses["A2"] == "SOLD"
    assert statuses["B1"] == "AVAILABLE" and statuses["B2"] == "RESERVED"
    assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 13


def test_health_is_degraded_not_down(client, redis_down):
    answer = client.get("/health")
    assert answer.status == 200
    assert answer.body["status"] == "degraded"
    assert answer.body["checks"]["postgres"] == "ok" and answer.body["checks"]["aws"] == "ok"
    assert answer.body["checks"]["redis"] != "ok"


def test_a_hung_redis_costs_one_timeout_not_one_per_request(client, make_session, redis_hung):
    session = make_session()
    started = time.monotonic()
    slowest = 0.0
    for _ in range(30):
        one = time.monotonic()
        assert client.get(f"/sessions/{session['id']}/seats").status == 200
        slowest = max(slowest, time.monotonic() - one)
    elapsed = time.monotonic() - started
    # The first read waits out the 0.25 s socket timeout, then the breaker skips Redis.
    assert slowest < 0.6
    assert elapsed < 1.5, elapsed
    assert cache.breaker.is_open


def test_redis_back_after_an_outage_serves_fresh_maps(client, customer, make_session, monkeypatch):
    session = make_session()
    working_url = get_settings().redis_url
    assert client.get(f"/sessions/{session['id']}/seats").status == 200  # warm
    dead = f"redis://127.0.0.1:{free_port()}/0"
    use_redis_at(monkeypatch, dead)
    try:
        assert hold(client, customer, session["id"], ["A1"]).status == 201
    finally:
        use_redis_at(monkeypatch, working_url)
    statuses = {
        s["label"]: s["status"]
        for s in client.get(f"/sessions/{session['id']}/seats").body["seats"]
    }
    assert statuses["A1"] == "RESERVED"
    get_settings.cache_clear()
