"""`make run` as a supervisor of processes, one per role, against the real thing: its HTTP workers
share the rate limits and idempotency keys, a killed worker or role comes back, a role that keeps
dying stops the whole system, the edge answers what API Gateway would, kept-alive connections stay
fast, and the service recovers by itself when the AWS endpoint restarts empty."""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devtools.net import free_port
from tests.e2e.conftest import children, roles, start_system, stop_system, wait_for
from tests.support.data import live_token, session_body

pytestmark = pytest.mark.slow


def call(
    url: str, method: str, path: str, body: Any = None, token: str | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    """One request on a connection of its own."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    sent = {**headers}
    if token:
        sent["Authorization"] = f"Bearer {token}"
    payload = None if body is None else json.dumps(body).encode()
    if payload is not None:
        sent["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        headers_in = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers_in, json.loads(raw) if raw else None
    finally:
        connection.close()


def _answers(url: str) -> bool:
    try:
        return call(url, "GET", "/health")[0] == 200
    except OSError:
        return False


def user(role: str = "CUSTOMER") -> dict[str, str]:
    from chalicelib.services import accounts

    found, _ = accounts.ensure_user(
        email=f"{role.lower()}-{uuid.uuid4().hex[:8]}@example.com",
        password="password123",
        name="E2E",
        role=role,
    )
    return {**found, "token": live_token(found["id"], role)}


def new_session(url: str) -> dict[str, Any]:
    status, _, session = call(url, "POST", "/sessions", session_body(), user("MANAGER")["token"])
    assert status == 201, session
    return session


@pytest.fixture
def two_worker_system(tmp_path):
    system = start_system(tmp_path, {"WEB_CONCURRENCY": "2"}, name="two-workers")
    yield system
    assert stop_system(system) == 0, system.log()[-3000:]


@pytest.fixture
def limited_system(tmp_path):
    """Two workers, 20 requests a minute per caller, and Redis keys of its own (no other test's
    requests in its windows)."""
    prefix = f"{os.environ['REDIS_PREFIX']}limited-{uuid.uuid4().hex[:6]}:"
    system = start_system(
        tmp_path,
        {"WEB_CONCURRENCY": "2", "RATE_LIMIT_PER_MINUTE": "20", "REDIS_PREFIX": prefix},
        name="limited",
    )
    yield system
    assert stop_system(system) == 0, system.log()[-3000:]


def test_each_role_is_a_process_and_http_has_its_workers(two_worker_system) -> None:
    found = roles(two_worker_system)
    assert set(found) == {"aws", "events", "http"}, found
    assert len(set(found.values())) == 3
    assert len(children(found["http"])) == 2  # WEB_CONCURRENCY granian workers


def test_workers_share_rate_limits_and_idempotency_keys(limited_system) -> None:
    url = limited_system.url
    customer = user()
    # 40 requests at once, each on a connection of its own, by one caller limited to 20 a minute.
    with ThreadPoolExecutor(40) as pool:
        answers = list(
            pool.map(
                lambda _: call(url, "GET", "/me/purchases", token=customer["token"]), range(40)
            )
        )
    workers = {headers["x-boxoffice-worker"] for _, headers, _ in answers}
    assert len(workers) == 2, "the requests did not reach both workers"
    assert sorted(status for status, _, _ in answers) == [200] * 20 + [429] * 20

    session = new_session(url)
    buyer = user()
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(12) as pool:
        holds = list(
            pool.map(
                lambda _: call(
                    url,
                    "POST",
                    "/reservations",
                    {"session_id": session["id"], "seats": ["A1", "A2"]},
                    buyer["token"],
                    **{"Idempotency-Key": key},
                ),
                range(12),
            )
        )
    assert {headers["x-boxoffice-worker"] for _, headers, _ in holds} == workers
    assert {status for status, _, _ in holds} == {201}, holds
    assert len({body["id"] for _, _, body in holds}) == 1  # one hold, the same answer to all
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        made = conn.execute(
            "SELECT count(*) FROM reservations WHERE customer_id = %s", (buyer["id"],)
        ).fetchone()[0]
    assert made == 1


def test_a_killed_worker_is_replaced_and_the_service_goes_on(two_worker_system) -> None:
    url = two_worker_system.url
    http_master = roles(two_worker_system)["http"]
    first, second = children(http_master)
    os.kill(first, signal.SIGKILL)

    # The other worker answers meanwhile (a connection the dead one had accepted may fail once,
    # as it would for any client of a crashed server); granian starts a new one in its place.
    assert wait_for(lambda: _answers(url), 5, "an answer from the other worker")
    replaced = wait_for(
        lambda: len(children(http_master)) == 2 and first not in children(http_master),
        15,
        "a new worker in place of the killed one",
    )
    assert replaced
    assert second in children(http_master)
    statuses = [call(url, "GET", "/sessions")[0] for _ in range(20)]
    assert statuses == [200] * 20


def test_a_killed_role_is_started_again(two_worker_system) -> None:
    events = roles(two_worker_system)["events"]
    os.kill(events, signal.SIGKILL)
    restarted = wait_for(
        lambda: roles(two_worker_system).get("events") not in (None, events),
        15,
        "the events role started again",
    )
    assert restarted
    assert "events: exited with code -9; starting it again" in two_worker_system.log()


def test_a_role_that_keeps_dying_stops_the_whole_system(tmp_path) -> None:
    """A half-running system that looks healthy is worse than none: the event process cannot
    start (its configuration is broken), so after a few restarts everything stops, with a
    message that says which role."""
    system = start_system(tmp_path, {"LOCAL_SQS_POLLERS": "not-a-number"}, name="dying")
    try:
        code = system.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        system.process.kill()
        raise
    assert code == 1
    assert "make run: the events role exited 6 times within 60 s" in system.log()
    assert children(system.process.pid) == []


def test_the_edge_answers_what_api_gateway_would(two_worker_system) -> None:
    url = two_worker_system.url
    for method in ("TRACE", "PUT", "PATCH"):
        status, headers, body = call(url, method, "/sessions")
        assert status == 405, (method, body)
        assert body["Code"] == "MethodNotAllowed"
        assert headers["allow"] == "POST, GET"
        assert headers["content-type"] == "application/json"
    status, _, body = call(url, "DELETE", "/health")
    assert (
        status,
        body["Code"],
    ) == (405, "MethodNotAllowed")

    status, _, body = call(url, "GET", "/no/such/route")
    assert (status, body["Code"]) == (404, "NotFound")

    # A Content-Length over the limit is refused before a byte of the body is sent.
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/auth/login")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["Code"] == "ValidationError"
    connection.close()


def test_kept_alive_connection_latency_report(two_worker_system, record_property) -> None:
    """A report, not a timed assertion (the number goes to the test report and the terminal):
    sequential GETs on one kept-alive connection, as a browser or requests.Session sends them.
    What is asserted is that the connection really is kept."""
    url = two_worker_system.url
    session = new_session(url)
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sockets, latencies = set(), []
    for _ in range(200):
        began = time.perf_counter()
        connection.request("GET", f"/sessions/{session['id']}")
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - began)
        assert response.status == 200
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1, "the server closed a kept-alive connection"
    p50_ms = statistics.median(latencies) * 1000
    record_property("keep_alive_get_p50_ms", round(p50_ms, 3))
    print(f"\nkept-alive sequential GET /sessions/{{id}}: p50 {p50_ms:.2f} ms over 200")


def test_service_recovers_when_the_aws_endpoint_restarts_empty(tmp_path) -> None:
    """The embedded endpoint is killed and comes back with nothing in it. No one restarts `make
    run`: it provisions again by itself, relays what waited in the outbox, receipts and stats
    catch up, and /health is ok again."""
    system = start_system(tmp_path, {"HOLD_SECONDS": "60"}, name="aws-restart")
    try:
        url = system.url
        manager = user("MANAGER")
        status, _, session = call(url, "POST", "/sessions", session_body(), manager["token"])
        assert status == 201
        buyer = user()

        def buy(seat: str) -> str:
            status, _, hold = call(
                url,
                "POST",
                "/reservations",
                {"session_id": session["id"], "seats": [seat]},
                buyer["token"],
            )
            assert status == 201, hold
            status, _, sale = call(
                url, "POST", f"/reservations/{hold['id']}/payment", token=buyer["token"]
            )
            assert status == 200, sale
            return sale["id"]

        def receipts() -> set[str]:
            return {
                r["sale_id"]
                for r in call(url, "GET", "/me/receipts", token=buyer["token"])[2]["items"]
            }

        before = buy("A1")
        wait_for(lambda: before in receipts(), 15, "the first receipt")
        supervisor, endpoint = system.process.pid, roles(system)["aws"]

        os.killpg(endpoint, signal.SIGKILL)  # the role's process and granian's worker with it
        during = buy("A2")  # its events wait in the outbox while the endpoint is down or empty

        wait_for(lambda: roles(system).get("aws") not in (None, endpoint), 15, "a new endpoint")
        answered_at = time.monotonic()
        wait_for(lambda: during in receipts(), 30, "the receipt of the sale made meanwhile")
        stats = wait_for(
            lambda: (
                (
                    found := call(
                        url, "GET", f"/sessions/{session['id']}/stats", token=manager["token"]
                    )[2]
                )["sold_seats"]
                == 2
                and found
            ),
            30,
            "the sold-seat counter",
        )
        assert stats["revenue_cents"] == 2 * session["price_cents"]
        wait_for(lambda: call(url, "GET", "/health")[2]["status"] == "ok", 30, "/health ok")
        assert time.monotonic() - answered_at < 30
        assert system.process.poll() is None and system.process.pid == supervisor
        assert "provisioning the AWS endpoint again" in system.log()
    finally:
        assert stop_system(system) == 0, system.log()[-3000:]


def test_two_instances_share_the_endpoint_and_one_takes_it_over(tmp_path) -> None:
    """A second `make run` on another port reuses the first one's embedded endpoint: one
    service. When the first stops, its endpoint goes with it, and the second runs its own."""
    aws_port = str(free_port())
    first = start_system(tmp_path, {"EMBEDDED_AWS_PORT": aws_port}, name="first")
    second = start_system(tmp_path, {"EMBEDDED_AWS_PORT": aws_port}, name="second")
    try:
        assert "aws" in roles(first) and "aws" not in roles(second)
        assert "reused: another instance runs it" in second.log()
        assert stop_system(first) == 0

        wait_for(lambda: "aws" in roles(second), 20, "the second instance's own endpoint")
        url = second.url
        session = new_session(url)
        buyer = user()
        status, _, hold = call(
            url,
            "POST",
            "/reservations",
            {"session_id": session["id"], "seats": ["B1"]},
            buyer["token"],
        )
        assert status == 201
        status, _, _ = call(
            url, "POST", f"/reservations/{hold['id']}/payment", token=buyer["token"]
        )
        assert status == 200
        wait_for(
            lambda: call(url, "GET", "/me/receipts", token=buyer["token"])[2]["items"],
            30,
            "a receipt through the new endpoint",
        )
    finally:
        if first.process.poll() is None:
            stop_system(first)
        assert stop_system(second) == 0, second.log()[-3000:]


def test_make_run_forwards_ctrl_c_to_every_role(tmp_path) -> None:
    system = start_system(tmp_path, name="ctrl-c")
    pids = list(roles(system).values())
    assert len(pids) == 3
    assert stop_system(system) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
