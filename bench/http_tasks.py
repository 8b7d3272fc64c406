"""What the worker processes run against the system over HTTP: clients on kept-alive connections,
latency as a client sees it (from sending the request to reading the whole answer).

The client is the standard library's http.client, one connection per client thread: it costs a
fraction of what requests costs per call, so on a 2-core machine the load generator leaves the
cores to the system it measures.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bench.harness import Sample

Job = tuple[str, str, list[str], bool]  # (token, session id, seats, pay)
NO_ANSWER = 599  # a connection error or timeout, counted as its own status


class Client:
    """One kept-alive connection; reconnects after an error, as a browser would."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname, parts.port, timeout
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, bytes | None, float]:
        """(status, the body as sent, seconds). Bodies are parsed only where needed: parsing
        every 23 KB seat map would cost the load generator more CPU than the server."""
        headers = {}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        began = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            raw = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            return NO_ANSWER, None, time.perf_counter() - began
        return status, raw, time.perf_counter() - began

    def open(self) -> None:
        """Connect now, so the timed part starts on an open connection."""
        self.call("GET", "/health")

    def close(self) -> None:
        self.connection.close()


def _hold_and_maybe_pay(client: Client, job: Job, out: list[Sample]) -> None:
    token, session_id, seats, pay = job
    status, body, took = client.call(
        "POST", "/reservations", {"session_id": session_id, "seats": seats}, token
    )
    out.append(("hold", status, took))
    if pay and status == 201:
        reservation_id = json.loads(body)["id"]
        status, _, took = client.call(
            "POST", f"/reservations/{reservation_id}/payment", None, token
        )
        out.append(("pay", status, took))


def _drive(
    url: str,
    count: int,
    start: Callable[[], float],
    work: Callable[[Client, int, float, list[Sample]], None],
    seconds: float | None = None,
) -> list[Sample]:
    """`count` clients, each on a connection opened beforehand and a thread of its own, released
    together at the common start: work(client, n, deadline, samples) runs in each, with the
    monotonic deadline `seconds` after the start (infinite without `seconds`)."""
    clients = [Client(url) for _ in range(count)]
    for client in clients:
        client.open()
    begin = threading.Event()
    deadline = [math.inf]
    results: list[list[Sample]] = [[] for _ in range(count)]

    def run(n: int) -> None:
        begin.wait()
        work(clients[n], n, deadline[0], results[n])

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    started = start()
    if seconds is not None:
        deadline[0] = started + seconds
    begin.set()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return [sample for out in results for sample in out]


def sequential_gets(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """`count` GETs of `path`, one after another on one kept-alive connection."""
    client = Client(args["url"])
    client.open()
    start()
    samples = []
    for _ in range(args["count"]):
        status, _, took = client.call("GET", args["path"])
        samples.append(("get", status, took))
    client.close()
    return samples


def holds_for(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """`threads` clients, each working through its share of `jobs` (hold, and pay when marked)
    until its share is done or `seconds` have passed since the common start."""
    jobs: list[Job] = args["jobs"]
    threads = args["threads"]

    def work(client: Client, n: int, deadline: float, out: list[Sample]) -> None:
        for job in jobs[n::threads]:
            if time.monotonic() >= deadline:
                return
            _hold_and_maybe_pay(client, job, out)

    return _drive(args["url"], threads, start, work, args["seconds"])


def reads_for(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """`threads` clients reading `path` back to back for `seconds`."""

    def work(client: Client, n: int, deadline: float, out: list[Sample]) -> None:
        while time.monotonic() < deadline:
            status, _, took = client.call("GET", args["path"])
            out.append(("read", status, took))

    return _drive(args["url"], args["threads"], start, work, args["seconds"])


def burst(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """One client per job, each on its own connection opened beforehand, all released at once:
    a flash sale's first second."""
    jobs: list[Job] = args["jobs"]

    def work(client: Client, n: int, deadline: float, out: list[Sample]) -> None:
        _hold_and_maybe_pay(client, jobs[n], out)

    return _drive(args["url"], len(jobs), start, work)
