"""Signup and login, over a real HTTP socket: a tighter per-IP limit than other routes (shared by
every instance through Redis), and at most HASHING_SLOTS password hashes at a time per process, a
request that finds none free within a short wait answering 503 with Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from argon2 import PasswordHasher

from chalicelib.services import accounts
from chalicelib.settings import get_settings
from tests.support.live_server import serve_in_thread


@pytest.fixture(scope="module")
def live_url(app_module) -> Iterator[str]:
    with serve_in_thread(app_module.app) as url:
        yield url


@pytest.fixture
def auth_limit(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("RATE_LIMIT_AUTH_PER_MINUTE", "3")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "100")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def log_in(url: str, email: str, password: str = "password123") -> requests.Response:
    return requests.post(
        f"{url}/auth/login", json={"email": email, "password": password}, timeout=10
    )


def sign_up(url: str, email: str) -> requests.Response:
    body = {"email": email, "password": "password123", "name": "N"}
    return requests.post(f"{url}/auth/signup", json=body, timeout=10)


def test_signup_and_login_share_a_tighter_limit_per_ip(live_url, customer, auth_limit):
    assert sign_up(live_url, "new1@example.com").status_code == 201
    assert log_in(live_url, customer["email"]).status_code == 200
    assert log_in(live_url, customer["email"], "wrong-password").status_code == 401
    for refused in (log_in(live_url, customer["email"]), sign_up(live_url, "new2@example.com")):
        assert refused.status_code == 429 and refused.json()["Code"] == "RateLimited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Other routes keep the general limit: 5 of its 100 used (the refusals gave theirs back).
    assert [requests.get(f"{live_url}/sessions", timeout=10).status_code for _ in range(10)] == [
        200
    ] * 10


@pytest.fixture
def slow_hashes(monkeypatch) -> dict:
    """Password verification that takes 100 ms and records how many ran at once."""
    seen = {"now": 0, "most": 0}
    lock = threading.Lock()
    real_verify = PasswordHasher.verify

    def slow_verify(self, hash, password):
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            time.sleep(0.1)
            return real_verify(self, hash, password)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(PasswordHasher, "verify", slow_verify)
    return seen


def test_password_hashes_run_a_few_at_a_time(live_url, customer, slow_hashes):
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: log_in(live_url, customer["email"]), range(16)))
    assert {a.status_code for a in answers} <= {200, 503}
    assert sum(a.status_code == 200 for a in answers) >= accounts.HASHING_SLOTS
    assert slow_hashes["most"] == accounts.HASHING_SLOTS


def test_no_free_hashing_slot_within_the_wait_is_503_with_retry_after(
    live_url, customer, monkeypatch
):
    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(accounts, "_hashing_slots", slots)
    slots.acquire()  # every slot busy
    try:
        started = time.monotonic()
        busy = log_in(live_url, customer["email"])
        waited = time.monotonic() - started
    finally:
        slots.release()
    assert busy.status_code == 503, busy.text
    assert busy.json()["Code"] == "ServiceUnavailable"
    assert busy.headers["Retry-After"] == "1"
    assert accounts.HASHING_WAIT_S <= waited < accounts.HASHING_WAIT_S + 2
    assert log_in(live_url, customer["email"]).status_code == 200
