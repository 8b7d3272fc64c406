"""The local HTTP edge: API Gateway's part under `make run`, as a WSGI application for a production
HTTP server (granian; see devtools/run.py).

Each request becomes the API Gateway REST proxy event (payload 1.0) the Lambda function receives,
and goes through the same Chalice app. There is one route table, Chalice's: `app.routes`, matched
the way API Gateway matches them: a literal segment before a `{parameter}`, a trailing slash
ignored, and the path taken as it is (chalice.local's RouteMatcher runs the decoded path through
urlparse, so an encoded ";" or "?" in a parameter would cut the path short). What API Gateway
does before Lambda is done here:
- an unknown path is a JSON 404 `NotFound` (API Gateway's own answer is a 403);
- a body larger than the API's limit is refused from its Content-Length before any of it is read.
A method the route does not have reaches the app, which answers the contract's JSON 405 with
`Allow` (chalicelib/web/middleware.py), on Lambda as here. Every answer names the worker process
that gave it (`X-Boxoffice-Worker`), so that a person, or a test, can see requests spread over
granian's workers.

    granian --interface wsgi --factory devtools.edge:create_application
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from chalice import Chalice

from chalicelib.domain.errors import BoxOfficeError, NotFound
from chalicelib.web.schemas import MAX_BODY_BYTES, BodyTooLarge
from devtools.lambda_context import LambdaContext
from devtools.processes import granian_command

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
JSON_HEADERS = [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
WORKER_HEADER = "X-Boxoffice-Worker"
BODILESS = {204, 304}
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
# The API Gateway stage name the app would see in requestContext (.chalice/config.json).
API_STAGE = "api"


def _status_line(code: int) -> str:
    return STATUS_LINES.get(code) or f"{code} Unknown"


def _wsgi_text(value: str) -> str:
    """WSGI hands paths over as latin-1 decoded bytes; the URL's bytes are UTF-8."""
    return value.encode("latin-1").decode("utf-8", "replace")


class Routes:
    """The app's route table (`app.routes`), compiled for matching request paths."""

    def __init__(self, route_keys: Iterable[str]) -> None:
        # Sorted, "{" after letters: /sessions/new would come before /sessions/{session_id}.
        self._routes = [(key, key.split("/")) for key in sorted(route_keys)]

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        parts = path.split("/")
        for key, pattern in self._routes:
            if len(pattern) != len(parts):
                continue
            captured = {}
            for part, wanted in zip(parts, pattern, strict=True):
                if wanted.startswith("{") and wanted.endswith("}"):
                    if not part:
                        break  # API Gateway never matches a parameter to nothing
                    captured[wanted[1:-1]] = part
                elif part != wanted:
                    break
            else:
                return key, captured
        return None


# Some servers (granian) start each request's environ from the process environment: an HTTP_
# variable there (HTTP_PROXY...) is not a header the client sent.
_PROCESS_VARIABLES = frozenset(os.environ)


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        name[5:].replace("_", "-").lower(): value
        for name, value in environ.items()
        if name.startswith("HTTP_") and name not in _PROCESS_VARIABLES
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    return headers


def _body(raw: bytes) -> tuple[str | None, bool]:
    """The event's body and isBase64Encoded: text when it is UTF-8, base64 otherwise (bytes that
    are not text must reach the app as they were sent, to be refused there as bad JSON)."""
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True


class Edge:
    def __init__(self, app: Chalice, stage: str) -> None:
        self.app = app
        self.routes = Routes(app.routes)
        self.function_name = f"{app.app_name}-{stage}"
        self.region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = _wsgi_text(environ.get("PATH_INFO") or "/")
        match = self.routes.match(path)
        if match is None:
            return self._refuse(NotFound(f"no route for {method} {path}"), start_response)
        route, captured = match
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            # Refused unread; closing the connection spares the server skipping the body.
            return self._refuse(BodyTooLarge(), start_response, close=True)
        raw = environ["wsgi.input"].read(int(length)) if length != "0" else b""
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        body, is_base64 = _body(raw)
        headers = _headers(environ)
        event = {
            "resource": route,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": captured or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route,
                "httpMethod": method,
                "path": path,
                "stage": API_STAGE,
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": environ.get("REMOTE_ADDR") or "127.0.0.1"},
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }
        context = LambdaContext(self.function_name, self.region, timeout_s=30)
        response = self.app(event, context)
        return self._respond(response, start_response)

    @staticmethod
    def _respond(response: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = response.get("body") or b""
        if isinstance(body, str):
            body = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        status = response["statusCode"]
        headers = [(name, str(value)) for name, value in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(value)) for value in values)
        if status in BODILESS:
            # A 304 names the representation it stands for; a length of 0 would misdescribe it.
            headers = [
                (n, v) for n, v in headers if n.lower() not in ("content-length", "content-type")
            ]
            body = b""
        else:
            headers.append(("Content-Length", str(len(body))))
        headers.append((WORKER_HEADER, str(os.getpid())))
        start_response(_status_line(status), headers)
        return [body]

    @staticmethod
    def _refuse(
        error: BoxOfficeError, start_response: StartResponse, close: bool = False
    ) -> Iterable[bytes]:
        body = json.dumps(error.body()).encode()
        headers = [
            *JSON_HEADERS,
            ("Content-Length", str(len(body))),
            (WORKER_HEADER, str(os.getpid())),
        ]
        if close:
            headers.append(("Connection", "close"))
        start_response(_status_line(error.status), headers)
        return [body]


def server_command(host: str, port: int, workers: int, threads: int) -> list[str]:
    """granian serving this edge; a worker that dies is started again by granian itself."""
    return granian_command(
        "devtools.edge:create_application",
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        respawn=True,
    )


def create_application() -> Edge:
    """The WSGI application for the app in app.py (a factory: each server worker calls it)."""
    import app as app_module

    return Edge(app_module.app, os.environ.get("STAGE", "local"))
