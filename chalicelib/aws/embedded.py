"""The embedded AWS endpoint: moto's server in this process, for `make run` and the tests.

`make run` uses 127.0.0.1:4566 and reuses whatever AWS endpoint already answers there (moto from
another `make run`, or LocalStack), so that several instances share one topic and its queues.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator

from moto.server import ThreadedMotoServer

START_TIMEOUT_S = 10


def answers_as_aws(url: str) -> bool:
    """True if something at url speaks the SQS query API (moto or LocalStack). A closed port
    answers at once; the timeout is for a fresh moto, whose first request loads its SQS backend
    (0.13 s here when idle, past a second while LocalStack's tests ran beside it)."""
    try:
        with urllib.request.urlopen(f"{url}/?Action=ListQueues", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _not_about_unsupported_resources(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("No Moto CloudFormation support")


def _quiet_moto() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call otherwise
    # moto's CloudFormation warns, on every deploy, that it skips subscriptions and queue
    # policies; provision() notices that itself, says so in one line and creates them directly.
    logging.getLogger("moto").addFilter(_not_about_unsupported_resources)
    warnings.filterwarnings("ignore", "Tried to parse AWS::", UserWarning)


def _start_moto(host: str, port: int) -> ThreadedMotoServer | None:
    """The started server, or None if it could not bind the port."""
    _quiet_moto()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    # start() waits forever when the port is taken (the bind fails in moto's own thread and the
    # ready event never fires), so it runs in a thread of ours that we can stop waiting for.
    starter = threading.Thread(target=server.start, name=f"moto-start:{port}", daemon=True)
    starter.start()
    starter.join(START_TIMEOUT_S)
    return None if starter.is_alive() else server


def start_embedded_endpoint(
    host: str = "127.0.0.1", port: int = 4566
) -> tuple[str, ThreadedMotoServer | None]:
    """(url, server): the server to .stop() later, or None when an endpoint that was already
    answering on host:port is reused."""
    url = f"http://{host}:{port}"
    if answers_as_aws(url):
        return url, None
    server = _start_moto(host, port)
    if server is not None:
        return url, server
    if answers_as_aws(url):  # another instance started one there a moment before us
        return url, None
    raise RuntimeError(f"cannot start moto on {host}:{port}: the port is taken by a non-AWS server")


@contextlib.contextmanager
def moto_endpoint(host: str = "127.0.0.1") -> Iterator[str]:
    """A private moto server on a free port for the duration of the block (tests): its url."""
    port = free_port(host)
    server = _start_moto(host, port)
    if server is None:
        raise RuntimeError(f"moto did not start on {host}:{port}")
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
