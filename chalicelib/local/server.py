"""The local HTTP server: API Gateway's role on a laptop, in front of the same Chalice app.

Built on chalice.local (route matching, API Gateway proxy events) with what API Gateway and the
contract need on top: an unknown route is a JSON 404 `NotFound` (chalice local answers 403), an
oversized body is refused before it is read, and each request runs on its own thread.
"""

from __future__ import annotations

import json
from http.server import HTTPServer

from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    ForbiddenError,
    LocalGatewayException,
    ThreadedHTTPServer,
)

from chalicelib.web.schemas import MAX_BODY_BYTES


def _json(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, json.dumps({"Code": code, "Message": message}).encode()


class BoxOfficeRequestHandler(ChaliceRequestHandler):
    # HTTP/1.1 keep-alive lets load generators reuse connections.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the app's structured access log already records every request

    def _send_error_response(self, error: LocalGatewayException) -> None:
        if isinstance(error, ForbiddenError):
            # chalice local's "no such route" answer; API Gateway's is a 403 too, ours is a 404.
            status, body = _json(404, "NotFound", f"no route for {self.command} {self.path}")
        else:
            status, body = error.CODE, error.body or b"{}"
        self._send_http_response(status, {"Content-Type": "application/json"}, body)

    def _generic_handle(self) -> None:
        length = self.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            status, body = _json(400, "ValidationError", "the request body is too large")
            self.close_connection = True
            self._send_http_response(status, {"Connection": "close"}, body)
            return
        super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


class BoxOfficeHTTPServer(ThreadedHTTPServer):
    allow_reuse_address = True
    request_queue_size = 1024


def make_server(app_object: object, host: str, port: int, stage: str = "local") -> HTTPServer:
    config = Config(chalice_stage=stage, user_provided_params={"app_name": "boxoffice"})

    def handler(request, client_address, server):
        return BoxOfficeRequestHandler(
            request, client_address, server, app_object=app_object, config=config
        )

    return BoxOfficeHTTPServer((host, port), handler)
