"""What the worker processes run. Each task is `task(args, start)`: it prepares (imports, events,
connections), calls `start()` to wait for the common release, works, and returns its samples.

Service tasks call the Chalice app the way Lambda does: `app(event, context)` with an API Gateway
proxy event, one request at a time per process. Only that call is timed; building the event and
reading the answer are the client's side and stay outside the measurement.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.harness import Sample
from devtools.lambda_context import LambdaContext

Job = tuple[str, str, list[str], bool]  # (token or customer id, session id, seats, pay)


def lambda_context() -> LambdaContext:
    return LambdaContext("boxoffice-bench-api", "us-east-1", timeout_s=30)


def proxy_event(
    method: str,
    resource: str,
    path: str,
    *,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    token: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API (proxy integration) event, as Lambda receives it."""
    headers = {
        "Host": "bench.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "boxoffice-bench",
        "X-Forwarded-For": "127.0.0.1",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def hold_event(token: str, session_id: str, seats: list[str]) -> dict[str, Any]:
    return proxy_event(
        "POST",
        "/reservations",
        "/reservations",
        body={"session_id": session_id, "seats": seats},
        token=token,
    )


def pay_event(token: str, reservation_id: str) -> dict[str, Any]:
    return proxy_event(
        "POST",
        "/reservations/{reservation_id}/payment",
        f"/reservations/{reservation_id}/payment",
        path_parameters={"reservation_id": reservation_id},
        token=token,
    )


def seat_map_event(session_id: str) -> dict[str, Any]:
    return proxy_event(
        "GET",
        "/sessions/{session_id}/seats",
        f"/sessions/{session_id}/seats",
        path_parameters={"session_id": session_id},
    )


_app: Any = None


def warm_app() -> Any:
    """Import the app (the cold start) and touch what a first request would set up: the pool,
    Redis, the SNS and SQS clients and names. Done once per process, before any timing."""
    global _app
    if _app is None:
        import app as app_module
        from chalicelib.aws import clients
        from chalicelib.cache import redis_client
        from chalicelib.db import get_pool
        from chalicelib.settings import get_settings

        _app = app_module
        get_pool().wait(timeout=10)
        redis_client().ping()
        clients.events_topic_arn()
        clients.queue_url(get_settings().expiry_queue_name)
        answer = _app.app(proxy_event("GET", "/health", "/health"), lambda_context())
        if answer["statusCode"] != 200:
            raise RuntimeError(f"warm-up /health answered {answer}")
    return _app


def _invoke(event: dict[str, Any]) -> tuple[int, str, float]:
    context = lambda_context()
    began = time.perf_counter()
    answer = _app.app(event, context)
    took = time.perf_counter() - began
    return answer["statusCode"], answer.get("body") or "", took


def _set_hold_seconds(seconds: int | None) -> Callable[[], None]:
    """Change HOLD_SECONDS in this warm process; returns how to undo it."""
    from chalicelib.settings import get_settings

    if seconds is None:
        return lambda: None
    before = os.environ.get("HOLD_SECONDS")
    os.environ["HOLD_SECONDS"] = str(seconds)
    get_settings.cache_clear()

    def undo() -> None:
        if before is None:
            os.environ.pop("HOLD_SECONDS", None)
        else:
            os.environ["HOLD_SECONDS"] = before
        get_settings.cache_clear()

    return undo


def _profiler(args: dict[str, Any]) -> Any:
    if not args.get("profile_to") or os.environ.get("BENCH_WORKER_INDEX") != "0":
        return None
    from pyinstrument import Profiler

    return Profiler(interval=0.0005)


def _save_profile(profiler: Any, args: dict[str, Any]) -> None:
    if profiler is None:
        return
    base = args["profile_to"]
    with open(f"{base}.txt", "w") as out:
        out.write(profiler.output_text(unicode=True, color=False, show_all=False))
    with open(f"{base}.html", "w") as out:
        out.write(profiler.output_html())


# --- the service: the Lambda handler -------------------------------------------------------


def service_holds(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """Hold each job's seats; pay the ones marked to pay. args: jobs, hold_seconds (optional)."""
    warm_app()
    undo = _set_hold_seconds(args.get("hold_seconds"))
    jobs: list[Job] = args["jobs"]
    events = [hold_event(token, session_id, seats) for token, session_id, seats, _ in jobs]
    samples: list[Sample] = []
    profiler = _profiler(args)
    start()
    if profiler is not None:
        profiler.start()
    try:
        for (token, _, _, pay), event in zip(jobs, events, strict=True):
            status, body, took = _invoke(event)
            samples.append(("hold", status, took))
            if pay and status == 201:
                status, _, took = _invoke(pay_event(token, json.loads(body)["id"]))
                samples.append(("pay", status, took))
    finally:
        if profiler is not None:
            profiler.stop()
        undo()
    _save_profile(profiler, args)
    return samples


def service_gets(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """GET /sessions/{id} `count` times, one after another. args: session_id, count."""
    warm_app()
    session_id = args["session_id"]
    event = proxy_event(
        "GET",
        "/sessions/{session_id}",
        f"/sessions/{session_id}",
        path_parameters={"session_id": session_id},
    )
    _invoke(event)
    start()
    samples: list[Sample] = []
    for _ in range(args["count"]):
        status, _, took = _invoke(event)
        samples.append(("get", status, took))
    return samples


def service_reads(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """GET /sessions/{id}/seats `count` times. args: session_id, count, path ("warm": through
    the Redis cache; "postgres": the cache bypassed, as when Redis is down)."""
    warm_app()
    from chalicelib.cache import seat_maps

    original = seat_maps.cached_snapshot
    if args["path"] == "postgres":
        seat_maps.cached_snapshot = lambda session_id: None
    event = seat_map_event(args["session_id"])
    samples: list[Sample] = []
    try:
        _invoke(event)  # the first read of a cold cache rebuilds it; not the steady state
        start()
        for _ in range(args["count"]):
            status, _, took = _invoke(event)
            samples.append(("read", status, took))
    finally:
        seat_maps.cached_snapshot = original
    return samples


# --- the limit: the same SQL on plain psycopg connections ------------------------------------


def limit_holds(args: dict[str, Any], start: Callable[[], float]) -> list[Sample]:
    """`take_seats` and `confirm_payment`, each in its own transaction on one long-lived
    connection: no HTTP, no handler, no Redis, no relay. args: jobs (customer ids), database_url,
    hold_seconds."""
    import psycopg
    from psycopg.rows import dict_row

    from chalicelib.db.pool import CONNECTION_OPTIONS
    from chalicelib.domain.errors import BoxOfficeError
    from chalicelib.services.payments import confirm_payment
    from chalicelib.services.reservations import take_seats

    jobs: list[Job] = args["jobs"]
    samples: list[Sample] = []
    with psycopg.connect(
        args["database_url"],
        row_factory=dict_row,
        options=CONNECTION_OPTIONS,
        application_name="boxoffice-bench-limit",
    ) as conn:
        conn.execute("SELECT 1")
        conn.commit()
        start()
        for customer_id, session_id, seats, pay in jobs:
            began = time.perf_counter()
            try:
                reservation = take_seats(
                    conn,
                    customer_id=customer_id,
                    session_id=session_id,
                    seats=seats,
                    hold_seconds=args["hold_seconds"],
                )
                conn.commit()
                status = 201
            except BoxOfficeError as exc:
                conn.rollback()
                status, reservation = exc.status, None
            samples.append(("hold", status, time.perf_counter() - began))
            if pay and reservation is not None:
                began = time.perf_counter()
                try:
                    confirm_payment(conn, str(reservation["id"]), customer_id)
                    conn.commit()
                    status = 200
                except BoxOfficeError as exc:
                    conn.rollback()
                    status = exc.status
                samples.append(("pay", status, time.perf_counter() - began))
    return samples


# --- the event side: what `make run`'s event runner does, for the whole run ------------------


def event_runner(args: dict[str, Any], start: Callable[[], float]) -> dict[str, Any]:
    """The app's event handlers fed the way Lambda's event source mappings and schedules feed
    them, through devtools/event_runner.py as `make run` runs it (each SQS queue long-polled,
    the sweep and the outbox relay on their schedules), until the file `stop_file` exists.
    Several processes give each queue several pollers, as Lambda scales its SQS pollers. Keeping
    the subscriber queues drained matters here: moto's SQS slows down with a queue's depth."""
    from devtools.event_runner import EventRunner

    app_module = warm_app()
    stop = threading.Event()
    runner = EventRunner(app_module, stop_event=stop)
    start()
    runner.start()
    while not os.path.exists(args["stop_file"]):
        time.sleep(0.2)
    stop.set()
    runner.join(timeout=10)
    return {}
