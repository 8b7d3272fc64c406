"""Starting and stopping the processes of the local system: granian's command line, and a stop
that waits, then kills."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For Popen's preexec_fn: the kernel sends the child SIGTERM when the process that started
    it dies, even of SIGKILL, so no local process outlives what started it."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def granian_command(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    log_level: str = "warning",
    respawn: bool = False,
) -> list[str]:
    """granian serving the WSGI application a factory (`module:function`) returns: `workers`
    processes with `threads` request threads each; with `respawn`, a worker that dies is started
    again by granian itself."""
    command = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--factory",
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        log_level,
    ]
    if respawn:
        command += ["--respawn-failed-workers", "--respawn-interval", "0.5"]
    return [*command, target]


def stop(process: subprocess.Popen, timeout: float = 10) -> bool:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds. True if it exited on
    its own."""
    if process.poll() is not None:
        return True
    process.terminate()
    try:
        process.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
