"""An AWS-compatible HTTP endpoint for tests: moto's server on a free port, provisioned."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

from moto.server import ThreadedMotoServer

from chalicelib.aws import clients


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_aws_endpoint(stage: str) -> Iterator[str]:
    existing = os.environ.get("TEST_AWS_ENDPOINT_URL")  # e.g. LocalStack for make test-localstack
    server = None
    if existing:
        url = existing
    else:
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        url = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    clients.reset()
    from chalicelib.aws.provision import provision

    provision(stage, endpoint_url=url)
    try:
        yield url
    finally:
        clients.reset()
        if server is not None:
            server.stop()
