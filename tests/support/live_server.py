"""The app behind the local HTTP edge (devtools/edge.py) on a real socket, for tests.

- `serve_in_thread(app)`: in this test process (so a test may change settings or patch code),
  on werkzeug's threaded server.
- `serve_in_process(env)`: granian in a process of its own, exactly as `make run` serves it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from werkzeug.serving import make_server

from devtools.edge import Edge, server_command
from devtools.net import answers_http, free_port
from devtools.processes import die_with_parent, stop
from devtools.stage import PROJECT_ROOT


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, Edge(app, os.environ["STAGE"]), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serve_in_process(
    env: dict[str, str] | None = None, *, workers: int = 1, threads: int = 8
) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        server_command("127.0.0.1", port, workers, threads),
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        deadline = time.monotonic() + 30
        while not answers_http(f"{url}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"granian did not serve the app on port {port}")
            time.sleep(0.1)
        yield url, process
    finally:
        stop(process)
