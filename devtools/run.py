"""`make run`: the whole system on one machine, one process per role, under a small supervisor.

1. the stage's environment from .chalice/config.json (the process environment overrides it);
2. the database created and migrated;
3. an AWS endpoint: AWS_ENDPOINT_URL if set; otherwise the embedded one on 127.0.0.1:4566
   (EMBEDDED_AWS_PORT), reused if another `make run` (or LocalStack) already answers there, so that
   two instances form one service; its queues, topic and subscriptions from infra/boxoffice.yaml;
4. the roles, each a process of its own:
   - aws:    the embedded endpoint (devtools/aws_endpoint.py), when this instance started it;
   - events: the event runner (devtools/event_runner.py): SQS pollers and schedules calling the
             app's handlers, as Lambda's event sources would;
   - http:   granian with WEB_CONCURRENCY worker processes (default: one per core), each serving
             the app through devtools/edge.py on HOST:PORT (127.0.0.1:8000).

A role whose process exits is started again; one that exits MAX_RESTARTS times within
RESTART_WINDOW_S stops the whole system with a message saying which (a half-running system that
looks healthy is worse than none). An embedded endpoint that another instance started and that
stops answering is replaced by one of this instance's own. Ctrl-C or SIGTERM stops every role.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from devtools import processes
from devtools.net import answers_http
from devtools.stage import PROJECT_ROOT, apply_stage_defaults

log = logging.getLogger("boxoffice.run")

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# Request threads per worker (WEB_THREADS): granian's own ceiling before it warns, 2 x cores + 1. A
# flash sale's tail was the same with 4, 8 and 16 (bench/README.md); more than the worker's
# database pool (DB_POOL_SIZE, 8) would only queue on the pool.
DEFAULT_THREADS_PER_WORKER = 2 * (os.cpu_count() or 1) + 1
# Checks of an endpoint another instance owns that may fail in a row before this one replaces it.
ADOPT_AFTER_MISSES = 3


@dataclass
class Role:
    name: str
    command: list[str]
    ready: Callable[[], bool]
    process: subprocess.Popen | None = None
    exits: deque[float] = field(default_factory=deque)

    def start(self) -> None:
        # A session of its own: the terminal's Ctrl-C reaches the supervisor only, which stops
        # the roles in order.
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            start_new_session=True,
            preexec_fn=processes.die_with_parent,
        )
        log.info("%s: started (pid %d)", self.name, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill_leftovers(self) -> None:
        """A role's process may have children (granian's workers) that outlive it when it is
        killed: they would go on serving the port with the old state. They share its process
        group (its session), which goes entirely."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is None:
            return
        if not processes.stop(self.process, STOP_TIMEOUT_S):
            log.warning("%s: did not stop within %.0f s; killed it", self.name, STOP_TIMEOUT_S)
        self.kill_leftovers()

    def restart_allowed(self, now: float) -> bool:
        self.exits.append(now)
        while self.exits and now - self.exits[0] > RESTART_WINDOW_S:
            self.exits.popleft()
        return len(self.exits) <= MAX_RESTARTS


def _wait_until(ready: Callable[[], bool], role: Role, stop: threading.Event) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and not stop.is_set():
        if role.exited() is not None:
            return False
        if ready():
            return True
        time.sleep(0.1)
    return False


class Supervisor:
    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.stop = threading.Event()
        self.roles: list[Role] = []
        self.failure: str | None = None
        self.host = os.environ.get("HOST", "127.0.0.1")
        self.port = int(os.environ.get("PORT", "8000"))
        self.embedded_port = int(os.environ.get("EMBEDDED_AWS_PORT", "4566"))
        self.aws: Role | None = None  # set when this instance runs the embedded endpoint
        self.adopting_misses = 0

    # --- the roles -------------------------------------------------------------------------------

    def embedded_endpoint_role(self) -> Role:
        from devtools.aws_endpoint import answers_as_aws, server_command

        url = f"http://127.0.0.1:{self.embedded_port}"
        return Role(
            "aws", server_command("127.0.0.1", self.embedded_port), lambda: answers_as_aws(url)
        )

    def http_role(self) -> Role:
        from devtools.edge import server_command

        workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
        threads = int(os.environ.get("WEB_THREADS") or DEFAULT_THREADS_PER_WORKER)
        command = server_command(self.host, self.port, workers, threads)
        url = f"http://{self.host}:{self.port}/health"
        return Role("http", command, lambda: answers_http(url))

    def events_role(self) -> Role:
        return Role("events", [sys.executable, "-m", "devtools.event_runner"], lambda: True)

    # --- start, watch, stop ----------------------------------------------------------------------

    def start_aws(self) -> str:
        from devtools.aws_endpoint import answers_as_aws
        from devtools.provision import provision

        if os.environ.get("AWS_ENDPOINT_URL"):
            url = os.environ["AWS_ENDPOINT_URL"]
            log.info("AWS endpoint: %s", url)
        else:
            url = f"http://127.0.0.1:{self.embedded_port}"
            if answers_as_aws(url):
                log.info("AWS endpoint: %s (reused: another instance runs it)", url)
            else:
                self.aws = self.embedded_endpoint_role()
                self.launch(self.aws)
            os.environ["AWS_ENDPOINT_URL"] = url
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        outputs = provision(self.stage, endpoint_url=url)
        log.info("provisioned: %s", ", ".join(sorted(outputs)))
        # Every role publishes to this topic; none creates it (a topic made without its
        # subscriptions would swallow events).
        os.environ["EVENTS_TOPIC_ARN"] = outputs["TopicArn"]
        return url

    def launch(self, role: Role) -> None:
        role.start()
        self.roles.append(role)
        if not _wait_until(role.ready, role, self.stop) and not self.stop.is_set():
            raise SystemExit(f"make run: the {role.name} role did not start; see the log above")

    def watch(self) -> None:
        """Restart what exits; replace a borrowed endpoint that is gone. Until stopped."""
        last_endpoint_check = time.monotonic()
        while not self.stop.wait(0.2):
            now = time.monotonic()
            for role in self.roles:
                code = role.exited()
                if code is None or self.stop.is_set():
                    continue
                if not role.restart_allowed(now):
                    self.failure = (
                        f"the {role.name} role exited {len(role.exits)} times within "
                        f"{RESTART_WINDOW_S:.0f} s (last exit code {code}); stopping everything"
                    )
                    self.stop.set()
                    break
                log.warning("%s: exited with code %s; starting it again", role.name, code)
                role.kill_leftovers()
                role.start()
            if self.aws is None and now - last_endpoint_check >= 1.0:
                last_endpoint_check = now
                self.adopt_endpoint_if_gone()

    def adopt_endpoint_if_gone(self) -> None:
        from devtools.aws_endpoint import answers_as_aws

        url = os.environ["AWS_ENDPOINT_URL"]
        if url != f"http://127.0.0.1:{self.embedded_port}":
            return  # an endpoint the user named: theirs to run
        if answers_as_aws(url, timeout=1):
            self.adopting_misses = 0
            return
        self.adopting_misses += 1
        if self.adopting_misses >= ADOPT_AFTER_MISSES:
            log.warning("AWS endpoint %s stopped answering; this instance runs one now", url)
            self.aws = self.embedded_endpoint_role()
            self.aws.start()
            self.roles.insert(0, self.aws)

    def shut_down(self) -> None:
        for role in reversed(self.roles):
            role.stop()
        log.info("stopped")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials..." lines
    stage = os.environ.get("STAGE", "local")
    apply_stage_defaults(stage)

    from chalicelib.db.migrate import create_database_if_missing, migrate
    from chalicelib.settings import get_settings

    settings = get_settings()
    create_database_if_missing(settings.database_url)
    applied = migrate(settings.database_url)
    log.info("database ready (%s)", ", ".join(applied) or "up to date")

    supervisor = Supervisor(stage)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping (%s)", signal.Signals(signum).name)
        supervisor.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        endpoint = supervisor.start_aws()
        supervisor.launch(supervisor.events_role())
        supervisor.launch(supervisor.http_role())
        print(
            f"boxoffice listening on http://{supervisor.host}:{supervisor.port} "
            f"(stage {stage}, hold {settings.hold_seconds}s, AWS {endpoint})",
            flush=True,
        )
        supervisor.watch()
    finally:
        supervisor.shut_down()
    if supervisor.failure:
        print(f"make run: {supervisor.failure}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
