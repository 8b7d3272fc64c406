"""Login answers an unknown email and a wrong password alike: same status and body, one password
verification each (an unknown email is checked against a decoy hash), and so similar time, here
measured with the production argon2 parameters rather than the tests' cheap ones."""

from __future__ import annotations

import statistics
import time

import pytest
from argon2 import PasswordHasher

from chalicelib.services import accounts


@pytest.fixture
def production_hasher(monkeypatch):
    monkeypatch.delenv("PASSWORD_HASH_PROFILE", raising=False)
    accounts.password_hasher.cache_clear()
    accounts._decoy_hash.cache_clear()
    yield accounts.password_hasher()
    accounts.password_hasher.cache_clear()
    accounts._decoy_hash.cache_clear()


def test_both_failures_verify_one_password_and_answer_alike(client, customer, monkeypatch):
    calls = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hash, password):
        calls.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    wrong = client.post("/auth/login", {"email": customer["email"], "password": "wrong-pass"})
    assert len(calls) == 1
    unknown = client.post("/auth/login", {"email": "nobody@example.com", "password": "wrong-pass"})
    assert len(calls) == 2 and calls[1] == accounts._decoy_hash()
    assert wrong.status == unknown.status == 401
    assert (
        wrong.body == unknown.body == {"Code": "Unauthorized", "Message": unknown.body["Message"]}
    )
    assert wrong.headers == unknown.headers


@pytest.mark.slow
def test_unknown_email_and_wrong_password_take_similar_time(client, production_hasher):
    assert production_hasher.time_cost >= 2 and production_hasher.memory_cost >= 19 * 1024
    accounts.ensure_user(
        email="timed@example.com", password="the-right-password", name="T", role="CUSTOMER"
    )
    attempts = {
        "wrong password": {"email": "timed@example.com", "password": "not-the-password"},
        "unknown email": {"email": "nobody@example.com", "password": "not-the-password"},
    }
    for body in attempts.values():  # warm up: pool, decoy hash
        client.post("/auth/login", body)
    times: dict[str, list[float]] = {name: [] for name in attempts}
    for _ in range(15):  # interleaved, so drift in machine load hits both alike
        for name, body in attempts.items():
            started = time.perf_counter()
            answer = client.post("/auth/login", body)
            times[name].append(time.perf_counter() - started)
            assert answer.status == 401
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"\nlogin medians (ms, production argon2): {medians}")
    ratio = medians["unknown email"] / medians["wrong password"]
    assert 0.75 <= ratio <= 1.33, medians
