"""App instances in processes of their own (tests.support.http_instance), sharing this test run's
database, Redis prefix and AWS endpoint: what several Lambda containers or servers share."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_instance(env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.http_instance", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode())
        try:
            requests.get(f"{url}/health", timeout=1)
            return url, process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the app instance did not start in 30 s")


@contextlib.contextmanager
def app_instances(count: int, **settings: str) -> Iterator[list[str]]:
    """`count` app processes with this run's environment plus `settings`; their base URLs."""
    env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
    started: list[tuple[str, subprocess.Popen]] = []
    try:
        for _ in range(count):
            started.append(start_instance(env))
        yield [url for url, _ in started]
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
