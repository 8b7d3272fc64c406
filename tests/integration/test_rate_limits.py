"""Rate limits on a real Redis: shared by two app processes, sliding, refusals not counted."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from chalicelib.settings import get_settings
from chalicelib.web import rate_limits
from tests.integration.conftest import delete_run_keys
from tests.support.live_server import serve_in_process


@pytest.fixture
def two_instances() -> Iterator[list[str]]:
    """Two app processes (granian, as `make run` serves it) sharing this run's database and Redis
    prefix, with low limits."""
    env = {
        "RATE_LIMIT_PER_MINUTE": "6",
        "RATE_LIMIT_HOLDS_PER_MINUTE": "2",
        "RATE_LIMIT_AUTH_PER_MINUTE": "2",
    }
    with serve_in_process(env) as (first, _), serve_in_process(env) as (second, _):
        delete_run_keys()  # the start-up probes of /health counted against this IP's limit
        yield [first, second]


@pytest.fixture
def limits(monkeypatch):
    """Set this process's limits for one test."""

    def set_to(per_minute: int, holds_per_minute: int = 0) -> None:
        monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", str(per_minute))
        monkeypatch.setenv("RATE_LIMIT_HOLDS_PER_MINUTE", str(holds_per_minute))
        get_settings.cache_clear()

    yield set_to
    get_settings.cache_clear()


def _status_and_headers(response: requests.Response) -> tuple[int, dict]:
    return response.status_code, response.headers


def assert_limited(response_status: int, headers) -> None:
    assert response_status == 429
    retry_after = headers.get("Retry-After") or headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60


@pytest.mark.slow
def test_limit_is_shared_by_two_instances(two_instances, make_user, make_session):
    first, second = two_instances
    statuses = [
        requests.get(f"{url}/sessions?limit=1", timeout=5).status_code
        for url in [first, second] * 3
    ]
    assert statuses == [200] * 6  # 6 per minute for this IP, across both instances
    for url in (first, second):
        refused = requests.get(f"{url}/sessions?limit=1", timeout=5)
        assert_limited(refused.status_code, refused.headers)
        assert refused.json()["Code"] == "RateLimited"

    # A user is counted apart from the IP it calls from, and on both instances too.
    user = make_user()
    auth = {"Authorization": f"Bearer {user['token']}"}
    as_user = [
        requests.get(f"{url}/me/purchases", headers=auth, timeout=5).status_code
        for url in [second, first] * 3
    ]
    assert as_user == [200] * 6
    refused = requests.get(f"{first}/me/purchases", headers=auth, timeout=5)
    assert_limited(refused.status_code, refused.headers)
    assert_limited(*_status_and_headers(requests.get(f"{first}/health", timeout=5)))


@pytest.mark.slow
def test_holds_limit_is_shared_by_two_instances(two_instances, make_user, make_session):
    session = make_session()
    user = make_user()
    auth = {"Authorization": f"Bearer {user['token']}"}

    def hold_on(url: str, seat: str) -> requests.Response:
        body = {"session_id": session["id"], "seats": [seat]}
        return requests.post(f"{url}/reservations", json=body, headers=auth, timeout=5)

    first, second = two_instances
    assert hold_on(first, "A1").status_code == 201
    assert hold_on(second, "A2").status_code == 201
    refused = hold_on(first, "A3")
    assert_limited(refused.status_code, refused.headers)
    refused = hold_on(second, "A3")
    assert_limited(refused.status_code, refused.headers)
    # The refused holds gave their slots back: 2 holds + 4 reads = the 6 requests allowed.
    for url in (first, second, first, second):
        assert requests.get(f"{url}/me/purchases", headers=auth, timeout=5).status_code == 200
    refused = requests.get(f"{second}/me/purchases", headers=auth, timeout=5)
    assert_limited(refused.status_code, refused.headers)


@pytest.mark.slow
def test_sign_in_limit_is_per_ip_and_shared_by_two_instances(two_instances, make_user):
    first, second = two_instances
    user = make_user()
    login = {"email": user["email"], "password": "password123"}
    signup = {"email": "fresh@example.com", "password": "password123", "name": "F"}
    assert requests.post(f"{first}/auth/login", json=login, timeout=5).status_code == 200
    assert requests.post(f"{second}/auth/signup", json=signup, timeout=5).status_code == 201
    for url, path, body in ((first, "signup", signup), (second, "login", login)):
        refused = requests.post(f"{url}/auth/{path}", json=body, timeout=5)
        assert_limited(refused.status_code, refused.headers)
    # 2 sign-ins of the general 6: the other routes still answer.
    assert requests.get(f"{first}/sessions?limit=1", timeout=5).status_code == 200


@pytest.mark.slow
def test_window_slides_and_refusals_do_not_count(client, limits, monkeypatch):
    """3 requests per 2 s window: the window frees each slot 2 s after its request, one by one,
    however often the caller was refused meanwhile; there is no fresh burst at any edge."""
    limits(3)
    monkeypatch.setattr(rate_limits, "WINDOW_MS", 2000)
    started = time.monotonic()
    assert client.get("/sessions").status == 200  # t = 0
    time.sleep(1.0)
    assert [client.get("/sessions").status for _ in range(2)] == [200, 200]  # t = 1
    refused = client.get("/sessions")
    assert_limited(refused.status, refused.headers)
    assert refused.headers["Retry-After"] == "1"
    while time.monotonic() - started < 1.9:  # hammering while refused changes nothing
        assert client.get("/sessions").status == 429
        time.sleep(0.02)
    time.sleep(max(0.0, 2.05 - (time.monotonic() - started)))
    assert client.get("/sessions").status == 200  # the t = 0 slot is free, and only that one
    assert client.get("/sessions").status == 429
    time.sleep(max(0.0, 3.05 - (time.monotonic() - started)))
    assert [client.get("/sessions").status for _ in range(3)] == [200, 200, 429]


def test_retry_after_counts_from_the_oldest_request_in_the_window(client, limits):
    limits(2)
    assert [client.get("/sessions").status for _ in range(2)] == [200, 200]
    refused = client.get("/sessions")
    assert_limited(refused.status, refused.headers)
    assert int(refused.headers["Retry-After"]) in (59, 60)
    assert refused.body["Code"] == "RateLimited"
    assert client.get("/health").status == 429  # limited like every route


def test_a_limit_of_zero_is_off(client, limits):
    limits(0)
    assert {client.get("/sessions").status for _ in range(50)} == {200}


def test_holds_limit_is_per_user(client, limits, make_user, make_session):
    session = make_session()
    limits(0, holds_per_minute=1)
    first, second = make_user(), make_user()

    def hold(user, seat):
        body = {"session_id": session["id"], "seats": [seat]}
        return client.post("/reservations", body, token=user["token"])

    assert hold(first, "A1").status == 201
    refused = hold(first, "A2")
    assert_limited(refused.status, refused.headers)
    assert hold(second, "A2").status == 201
    assert client.get("/sessions").status == 200  # other routes are not holds


@pytest.mark.slow
def test_a_replayed_hold_is_not_another_hold_and_a_429_is_not_kept(
    client, limits, customer, make_session, monkeypatch
):
    session = make_session()
    limits(0, holds_per_minute=1)
    monkeypatch.setattr(rate_limits, "WINDOW_MS", 1000)

    def hold(seat, key):
        body = {"session_id": session["id"], "seats": [seat]}
        return client.post(
            "/reservations", body, token=customer["token"], headers={"Idempotency-Key": key}
        )

    first = hold("A1", "first")
    assert first.status == 201
    assert hold("A1", "first").body == first.body  # the kept answer, not a 429
    refused = hold("A2", "second")
    assert_limited(refused.status, refused.headers)
    time.sleep(1.05)
    assert hold("A2", "second").status == 201  # the 429 was not kept under the key
