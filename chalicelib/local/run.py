"""`make run`: the whole system in one foreground process.

1. the stage's environment from .chalice/config.json (the process environment overrides it);
2. the database created and migrated;
3. an AWS endpoint: AWS_ENDPOINT_URL if set, otherwise an embedded moto server on 127.0.0.1:4566
   (reused if another `make run` already started one there, so two instances form one service);
4. the queues, topic and subscriptions provisioned from infra/boxoffice.yaml;
5. the HTTP API on 127.0.0.1:$PORT (default 8000);
6. the event runner: long-polls the SQS queues and fires the schedules, calling the same Chalice
   handlers Lambda would call.
Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from chalicelib.local.stage import apply_stage_defaults

log = logging.getLogger("boxoffice.local")


def _start_aws(stage: str) -> object | None:
    from chalicelib.aws.embedded import start_embedded_endpoint
    from chalicelib.aws.provision import provision

    embedded = None
    if not os.environ.get("AWS_ENDPOINT_URL"):
        port = int(os.environ.get("EMBEDDED_AWS_PORT", "4566"))
        url, embedded = start_embedded_endpoint("127.0.0.1", port)
        os.environ["AWS_ENDPOINT_URL"] = url
        log.info("AWS endpoint: %s (%s)", url, "embedded moto" if embedded else "reused")
    else:
        log.info("AWS endpoint: %s", os.environ["AWS_ENDPOINT_URL"])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    outputs = provision(stage, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    log.info("provisioned: %s", ", ".join(sorted(outputs)))
    return embedded


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stage = os.environ.get("STAGE", "local")
    apply_stage_defaults(stage)

    from chalicelib.db.migrate import create_database_if_missing, migrate
    from chalicelib.settings import get_settings

    settings = get_settings()
    create_database_if_missing(settings.database_url)
    applied = migrate(settings.database_url)
    log.info("database ready (%s)", ", ".join(applied) or "up to date")

    embedded = _start_aws(stage)

    import app as app_module
    from chalicelib.local.event_runner import EventRunner
    from chalicelib.local.server import make_server

    stop = threading.Event()
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    server = make_server(app_module.app, host, port, stage)
    http = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    http.start()
    runner = EventRunner(app_module, stop_event=stop)
    runner.start()

    def shut_down(signum: int, _frame: object) -> None:
        log.info("stopping (%s)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, shut_down)
    signal.signal(signal.SIGTERM, shut_down)
    print(
        f"boxoffice listening on http://{host}:{port} "
        f"(stage {stage}, hold {settings.hold_seconds}s, AWS {os.environ['AWS_ENDPOINT_URL']})",
        flush=True,
    )
    while not stop.is_set():
        time.sleep(0.2)

    server.shutdown()
    runner.join(timeout=10)
    if embedded is not None:
        embedded.stop()
    from chalicelib.db import close_pool

    close_pool()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
