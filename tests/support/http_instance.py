"""One app instance behind the local HTTP server, for tests that need several processes:
`python -m tests.support.http_instance PORT`. It takes its configuration from the environment
(the test run's database, Redis prefix and AWS endpoint) and serves until it is terminated."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    port = int(sys.argv[1])
    import app
    from chalicelib.local.server import make_server

    server = make_server(app.app, "127.0.0.1", port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
