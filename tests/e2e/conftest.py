"""End-to-end fixtures: the real `make run` (python -m devtools.run, its supervisor and the roles it
starts) on free ports, with its own embedded AWS endpoint, against this run's test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.net import free_port
from devtools.processes import die_with_parent

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveSystem:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_system(
    tmp_path: Path, extra_env: dict[str, str] | None = None, name: str = "system"
) -> LiveSystem:
    port = free_port()
    env = {
        **os.environ,
        "STAGE": "local",
        "PORT": str(port),
        "EMBEDDED_AWS_PORT": str(free_port()),
        "LOCAL_SCHEDULE_SECONDS": "1",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    if "AWS_ENDPOINT_URL" not in (extra_env or {}):
        env.pop("AWS_ENDPOINT_URL", None)
    log_path = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.run"],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"make run exited early:\n{log_path.read_text()}")
            # Ready as a user sees it: the supervisor has said so (it says so once every role
            # is up), and the API answers (429: a system with low rate limits, answering).
            if "boxoffice listening on" in log_path.read_text(errors="replace"):
                try:
                    if requests.get(f"{url}/health", timeout=5).status_code in (200, 429):
                        return LiveSystem(url, process, log_path)
                except (requests.ConnectionError, requests.Timeout):
                    pass
            time.sleep(0.2)
        raise AssertionError(f"make run did not answer in 60 s:\n{log_path.read_text()}")
    except BaseException:
        process.kill()  # never leave a server running behind a failed start
        raise


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """check()'s first truthy answer within `timeout` seconds; an AssertionError naming `what`
    otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def stop_system(system: LiveSystem) -> int:
    system.process.send_signal(signal.SIGINT)
    try:
        return system.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        system.process.kill()
        return -9


@pytest.fixture
def live_system(tmp_path) -> Iterator[LiveSystem]:
    system = start_system(tmp_path, {"HOLD_SECONDS": "2"})
    yield system
    code = stop_system(system)
    assert code == 0, f"Ctrl-C did not stop make run cleanly ({code}):\n{system.log()[-3000:]}"


@pytest.fixture(scope="session", autouse=True)
def _database(database: str) -> str:
    return database


# --- the processes `make run` started ------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


ROLE_MARKERS = {
    "aws": "devtools.aws_endpoint:create_moto_application",
    "events": "devtools.event_runner",
    "http": "devtools.edge:create_application",
}


def roles(system: LiveSystem) -> dict[str, int]:
    """The pid of each role process the supervisor runs, by role."""
    found = {}
    for pid in children(system.process.pid):
        line = command_line(pid)
        for role, marker in ROLE_MARKERS.items():
            if marker in line:
                found[role] = pid
    return found
