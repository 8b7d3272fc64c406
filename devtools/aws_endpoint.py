"""The embedded AWS endpoint: moto's SQS and SNS in a process of their own, served by granian.

`make run` starts it on 127.0.0.1:4566 unless AWS_ENDPOINT_URL names another endpoint, and reuses
whatever AWS endpoint already answers there (moto from another `make run`, or LocalStack), so that
several instances share one topic and its queues.

moto's own server is werkzeug's development server, which closes the connection after every
answer; granian keeps boto3's connections alive and parses HTTP in Rust, so the emulator spends
its one core on SQS and SNS. moto keeps its state in the memory of one process: one worker, many
threads (each SQS long poll holds one for its wait).

    python -m devtools.aws_endpoint --port 4566
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
import time as clock
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from typing import Any

from devtools.net import free_port
from devtools.processes import die_with_parent, granian_command, stop
from devtools.stage import PROJECT_ROOT

# Threads of the single worker: every long poll in flight holds one (LOCAL_SQS_POLLERS per queue
# per `make run`), and the relay and the HTTP workers' health checks need some beside them.
THREADS = 64


def answers_as_aws(url: str, timeout: float = 5) -> bool:
    """True if something at url speaks the SQS query API (moto or LocalStack). A closed port
    answers at once; the timeout is for a fresh moto, whose first request loads its SQS backend."""
    try:
        with urllib.request.urlopen(f"{url}/?Action=ListQueues", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_answering(url: str, timeout_s: float, alive: Any = lambda: True) -> bool:
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline and alive():
        if answers_as_aws(url, timeout=2):
            return True
        clock.sleep(0.1)
    return False


def _not_about_unsupported_resources(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No Moto CloudFormation support")


def _quiet_moto() -> None:
    logging.getLogger("moto").addFilter(_not_about_unsupported_resources)
    warnings.filterwarnings("ignore", "Tried to parse AWS::", UserWarning)


def speed_up_moto_sqs() -> None:
    """Keep the emulator from setting the pace of the event pipeline (moto 5.2.5).

    - SendMessage reads the queue's attributes, and those count the queue's messages
      (ApproximateNumberOfMessages...) by checking each one's visibility and delay with datetime
      arithmetic, about 80 us a message: a send to a queue holding 3,000 delayed expiry messages
      took 240 ms. The counts are recomputed at most once a second per queue (SQS calls them
      approximate too), and message time checks use time.time().
    - ReceiveMessage checks each message it returns against the queue's retention period, which
      moto reads by building every attribute of the queue (policy and redrive JSON included): a
      third of the emulator's time while subscribers drained. It reads the one attribute.
    - A long poll waits on a condition that only a new message signals, so a delayed message
      that becomes visible is noticed up to a second late; SQS returns it at once. It looks again
      every 50 ms.
    Receiving, delays, visibility and redrive otherwise behave as before.
    """
    import moto.sqs.models as sqs_models

    exact = sqs_models.unix_time_millis

    def unix_time_millis(dt: Any = None) -> float:
        return clock.time() * 1000.0 if dt is None else exact(dt)

    sqs_models.unix_time_millis = unix_time_millis
    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        count = getattr(sqs_models.Queue, name).fget

        def recent(queue: Any, count: Any = count, name: str = name) -> int:
            seen = queue.__dict__.setdefault("_recent_counts", {})
            now = clock.monotonic()
            if name not in seen or now - seen[name][0] > 1.0:
                seen[name] = (now, count(queue))
            return seen[name][1]

        setattr(sqs_models.Queue, name, property(recent))

    def within_retention(backend: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(backend.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > clock.time()

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = within_retention

    def wait_for_messages(queue: Any, timeout: float) -> None:
        deadline = clock.monotonic() + timeout
        with queue._messages_lock:
            while not queue.messages and clock.monotonic() < deadline:
                queue._messages_lock.wait(min(0.05, deadline - clock.monotonic()))

    sqs_models.Queue.wait_for_messages = wait_for_messages


def create_moto_application() -> Any:
    """moto's WSGI application (the one its server runs), for granian's --factory."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    _quiet_moto()
    speed_up_moto_sqs()
    return DomainDispatcherApplication(create_backend_app)


def server_command(host: str, port: int) -> list[str]:
    # granian warns at every start that 64 threads is many for the cores; it is meant.
    return granian_command(
        "devtools.aws_endpoint:create_moto_application",
        host=host,
        port=port,
        workers=1,
        threads=THREADS,
        log_level="error",
    )


@contextlib.contextmanager
def embedded_endpoint(port: int | None = None) -> Iterator[str]:
    """An endpoint process of its own on a free port for the duration of the block (tests and the
    benchmark): its URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        server_command("127.0.0.1", port),
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        if not wait_until_answering(url, 30, alive=lambda: process.poll() is None):
            raise RuntimeError(f"the embedded AWS endpoint did not start on port {port}")
        yield url
    finally:
        stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.aws_endpoint", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args()
    command = server_command(args.host, args.port)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
