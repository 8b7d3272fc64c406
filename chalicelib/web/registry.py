"""The API's routes, each declared once, with what the OpenAPI document says of it.

A module of chalicelib/web/routes/ makes one `Routes` (a Chalice Blueprint) and declares its
routes with `routes.get(path, summary=..., ...)`, `routes.post(...)` or `routes.delete(...)`;
app.py registers the blueprints. Chalice's route table (`app.routes`) is then the only list of
routes: the local edge matches requests against it (devtools/edge.py), `chalice package` builds
API Gateway from it, and chalicelib/web/openapi.py documents each of its entries from the
`Operation` recorded beside the view function.

What a declaration states is also what the route does, so the two cannot drift apart:
- `role`: the caller must present a bearer token (401 otherwise) and, for a named role, have it
  (403 otherwise); the view gets that `caller`.
- POST routes read their body as JSON whatever Content-Type the client sent (curl -d sends a
  form type); the others keep Chalice's default (JSON only, 415 otherwise).
- A view returns either a `Response` or the body of a JSON answer with the declared `status`.
- A box-office error raised by the view is answered as the contract's JSON error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice import Blueprint, Chalice, Response
from chalice.app import RouteEntry
from pydantic import BaseModel

from chalicelib.aws.secrets import SecretUnavailable
from chalicelib.db import DatabaseUnavailable
from chalicelib.domain.errors import BoxOfficeError
from chalicelib.services import accounts
from chalicelib.web import tokens
from chalicelib.web.errors import ServiceUnavailable
from chalicelib.web.responses import error_response, json_response

# Who may call a route: None (anyone), SIGNED_IN (any bearer token) or the role a token must name.
SIGNED_IN = "any"
CUSTOMER = "CUSTOMER"
MANAGER = "MANAGER"
JSON_BODIES = ["application/json", "*/*"]


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of one route (and, for `role`, what the route enforces)."""

    summary: str
    tag: str
    status: int = 200  # the success status
    response: Any = None  # the success body's type (a TypedDict or model), or None for `media`
    media: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # non-JSON success bodies
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: type[BaseModel] | None = None
    headers: type[BaseModel] | None = None
    errors: tuple[type[BoxOfficeError], ...] = ()  # beyond those every route can answer
    error_bodies: Mapping[int, Any] = field(default_factory=dict)  # a status whose body differs
    role: str | None = None
    database: bool = True  # answers 503 ServiceUnavailable when PostgreSQL is down
    etag: bool = False  # the answer carries an ETag; If-None-Match with it answers 304
    description: str = ""


View = Callable[..., Any]  # returns a Response, or a JSON body


def signed_in(authorization: str | None, role: str) -> tokens.Caller:
    """The caller named by the bearer token, with `role` unless SIGNED_IN. A token naming another
    role is 403, unless it is stale (401), which takes a database read on this refusal path
    only: every use case checks the token's version again in its own transaction."""
    caller = tokens.caller_from_header(authorization)
    if role != SIGNED_IN and caller.role != role:
        accounts.check_signed_in_now(caller)
        caller.require(role)
    return caller


class Routes(Blueprint):
    """The routes of one resource or concern, under one OpenAPI tag."""

    def __init__(self, import_name: str, tag: str) -> None:
        super().__init__(import_name)
        self.tag = tag

    def get(self, path: str, **operation: Any) -> Callable[[View], View]:
        return self._declare("GET", path, operation)

    def post(self, path: str, **operation: Any) -> Callable[[View], View]:
        return self._declare("POST", path, operation)

    def delete(self, path: str, **operation: Any) -> Callable[[View], View]:
        return self._declare("DELETE", path, operation)

    def _declare(self, method: str, path: str, operation: dict[str, Any]) -> Callable[[View], View]:
        declared = Operation(tag=self.tag, **operation)
        options: dict[str, Any] = {"methods": [method]}
        if method == "POST":
            options["content_types"] = JSON_BODIES

        def register(view: View) -> View:
            @functools.wraps(view)
            def respond(**path_params: Any) -> Response:
                try:
                    if declared.role is not None:
                        authorization = self.current_request.headers.get("authorization")
                        path_params["caller"] = signed_in(authorization, declared.role)
                    answer = view(**path_params)
                except BoxOfficeError as exc:
                    return error_response(exc)
                except (DatabaseUnavailable, SecretUnavailable) as exc:
                    # The message says what failed and that a retry is safe; no exception text.
                    return error_response(ServiceUnavailable(str(exc)))
                if isinstance(answer, Response):
                    return answer
                return json_response(answer, declared.status)

            respond.operation = declared  # type: ignore[attr-defined]
            self.route(path, **options)(respond)
            return respond

        return register


def routes_of(app: Chalice) -> Iterator[tuple[RouteEntry, Operation]]:
    """Every route of the app with its declaration, in the order they were registered."""
    for methods in app.routes.values():
        for entry in methods.values():
            operation = getattr(entry.view_function, "operation", None)
            if operation is None:
                raise LookupError(f"{entry.method} {entry.uri_pattern} was not declared by Routes")
            yield entry, operation
