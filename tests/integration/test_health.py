"""GET /health over a real HTTP socket: what it says when a dependency fails (the word
"unavailable", never the error), how often it asks the AWS endpoint, and that it is rate limited
like every route while still answering when Redis, which the limits need, is down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from chalicelib import cache
from chalicelib.aws import clients
from chalicelib.settings import get_settings
from chalicelib.web.routes import health
from devtools.net import free_port
from tests.support.live_server import serve_in_thread


@pytest.fixture(scope="module")
def live_url(app_module) -> Iterator[str]:
    with serve_in_thread(app_module.app) as url:
        yield url


@pytest.fixture(autouse=True)
def fresh_aws_check() -> Iterator[None]:
    health.forget_aws_check()
    yield
    health.forget_aws_check()


@pytest.fixture
def redis_and_aws_down(monkeypatch) -> Iterator[int]:
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    cache.reset()
    clients.reset()
    yield port
    monkeypatch.undo()
    get_settings.cache_clear()
    cache.reset()
    clients.reset()


def get_health(url: str) -> requests.Response:
    return requests.get(f"{url}/health", timeout=10)


def test_failing_checks_read_unavailable_and_nothing_else(live_url, redis_and_aws_down):
    answer = get_health(live_url)
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "degraded",
        "checks": {"postgres": "ok", "redis": "unavailable", "aws": "unavailable"},
    }
    assert str(redis_and_aws_down) not in answer.text and "127.0.0.1" not in answer.text


def test_the_aws_check_is_reused_for_a_few_seconds(live_url, monkeypatch):
    assert get_health(live_url).json()["checks"]["aws"] == "ok"
    # The endpoint goes away: within AWS_CHECK_SECONDS the answer is the one already known...
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    clients.reset()
    for _ in range(5):
        assert get_health(live_url).json()["checks"]["aws"] == "ok"
    # ...and once that has passed, the endpoint is asked again.
    monkeypatch.setattr(health, "AWS_CHECK_SECONDS", 0.0)
    assert get_health(live_url).json()["checks"]["aws"] == "unavailable"
    monkeypatch.undo()
    clients.reset()


@pytest.fixture
def limit_of_two(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "2")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_health_is_rate_limited_like_every_route(live_url, limit_of_two):
    assert [get_health(live_url).status_code for _ in range(2)] == [200, 200]
    refused = get_health(live_url)
    assert refused.status_code == 429 and refused.json()["Code"] == "RateLimited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_health_answers_while_redis_is_down_whatever_the_limit(
    live_url, limit_of_two, redis_and_aws_down
):
    answers = [get_health(live_url) for _ in range(5)]  # the limit fails open without Redis
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.json()["checks"]["redis"] for a in answers} == {"unavailable"}
