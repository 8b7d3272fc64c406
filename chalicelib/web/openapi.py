"""The OpenAPI 3.1 document, generated from the app's routes and what each declares
(chalicelib/web/registry.py): the models that validate its requests, the types its answers are
rendered as (chalicelib/services/views.py and the route modules), and the errors it can raise.
Nothing in it is hand-written JSON that could drift from the code.

OpenAPI 3.1 takes JSON Schema 2020-12, which is what pydantic writes, so the schemas go in as
pydantic makes them (less the per-property titles it derives from field names).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chalice import Chalice
from chalice.app import RouteEntry
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from chalicelib.domain import errors
from chalicelib.domain.errors import BoxOfficeError
from chalicelib.web import schemas
from chalicelib.web.errors import (
    ErrorBody,
    MethodNotAllowed,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from chalicelib.web.registry import CUSTOMER, JSON_BODIES, MANAGER, Operation, routes_of

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"
JSON = "application/json"

# What each error code means, for the descriptions of the error responses.
WHEN = {
    "Unauthorized": "no, expired or invalid bearer token (one issued before its user's password or "
    "role changed, or for a user who no longer exists, included), or bad credentials",
    "Forbidden": "authenticated, but the role may not do this",
    "NotFound": "no such resource (or it belongs to another customer)",
    "Conflict": "the resource already exists",
    "SeatUnavailable": "a seat is not available; `seats` names them",
    "InvalidState": "the reservation or session is not in a state that allows this",
    "HoldLimitReached": "the hold would give this customer more than SEATS_PER_CUSTOMER seats of "
    "the session (live holds plus seats bought; default 10); the body's `limit` and "
    "`held_seats` say how many",
    "MethodNotAllowed": "the path has no such method; the `Allow` header lists those it has",
    "IdempotencyKeyInProgress": "a request with the same Idempotency-Key is still running",
    "HoldExpired": "the hold's time has passed",
    "IdempotencyKeyReused": "the same Idempotency-Key was sent with a different request",
    "RateLimited": "too many requests; retry after `Retry-After` seconds",
    "ServiceUnavailable": "PostgreSQL cannot be reached; safe to retry",
    "SignInBusy": "PostgreSQL cannot be reached, or too many sign-ins are being checked at once "
    "(`Retry-After` seconds); safe to retry",
    "UnsupportedMediaType": "the request's Content-Type is not JSON",
}
# Chalice itself answers 415 on routes that accept only JSON when a request names another type.
UNSUPPORTED_MEDIA_TYPE = (415, "UnsupportedMediaType")

TAGS = [
    {"name": "auth", "description": "Customer accounts and bearer tokens"},
    {"name": "sessions", "description": "Screenings and their seats"},
    {"name": "reservations", "description": "Holds, cancellations and payments"},
    {"name": "me", "description": "The signed-in customer's history"},
    {"name": "operations", "description": "Health"},
    {"name": "docs", "description": "This document, Swagger UI and the seat-map page"},
]

DESCRIPTION = f"""\
Cinema ticketing: sessions, seat maps, seat holds that expire, payments.

* JSON in and out, UTF-8. Times are ISO-8601 with a zone; money is integer cents; ids are UUIDs.
* Request bodies are at most {schemas.MAX_BODY_BYTES // 1024} KiB and are validated strictly: \
wrong types, missing fields and
  unknown fields answer 400 `ValidationError`.
* Every 4xx/5xx answer is JSON with a machine-readable `Code` and a human `Message`.
* Calls that change state take `Authorization: Bearer <token>` from `/auth/signup` or `/auth/login`.
  Managers are created from the command line, never over HTTP.
* Every route is rate limited per caller: 429 `RateLimited` with `Retry-After` (seconds);
  `/auth/signup` and `/auth/login` also share a tighter limit per client IP.
* JSON nested deeper than {schemas.MAX_JSON_DEPTH} levels answers 400 `ValidationError` on every \
route.
* A method a path does not have answers 405 `MethodNotAllowed`, with an `Allow` header.
"""


class SchemaGenerator(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every property (the property's name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _parameters(model: type, location: str) -> list[dict[str, Any]]:
    schema = TypeAdapter(model).json_schema(
        ref_template=REF, schema_generator=SchemaGenerator, mode="validation"
    )
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", None)
        # An absent parameter is the "None" of its model; on the wire it is never null.
        if "anyOf" in prop:
            branches = [b for b in prop.pop("anyOf") if b != {"type": "null"}]
            prop = {**branches[0], **prop} if len(branches) == 1 else {"anyOf": branches, **prop}
        if prop.get("default", "") is None:
            prop.pop("default")
        param = {
            "name": name,
            "in": location,
            "required": location == "path" or name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        params.append(param)
    return params


def _invalid_input(op: Operation) -> str:
    """When this operation answers 400 ValidationError."""
    reasons = []
    if op.body is not None:
        reasons.append(
            "the JSON body is malformed, has wrong types, missing or unknown fields, or values "
            "out of range"
        )
    if op.query is not None:
        reasons.append("a query parameter is malformed or out of range")
    if op.headers is not None:
        reasons.append("the Idempotency-Key header is malformed")
    reasons.append(f"the request body is over {schemas.MAX_BODY_BYTES // 1024} KiB")
    return "; ".join(reasons)


def _error_response(
    entry: RouteEntry,
    op: Operation,
    codes: list[str],
    body: dict[str, Any] | None,
) -> dict[str, Any]:
    when = {**WHEN, "ValidationError": _invalid_input(op)}
    if entry.uri_pattern.startswith("/auth/"):
        when["ServiceUnavailable"] = WHEN["SignInBusy"]
    description = "; ".join(f"`{code}`: {when.get(code, code)}" for code in codes)
    schema = body or {
        "allOf": [
            {"$ref": REF.format(model=ErrorBody.__name__)},
            {"type": "object", "properties": {"Code": {"enum": codes}}},
        ]
    }
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if RateLimited.code in codes:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 60},
            }
        }
    if codes == [MethodNotAllowed.code]:
        response["headers"] = {
            "Allow": {
                "description": "The methods this path has, e.g. `GET, POST`",
                "required": True,
                "schema": {"type": "string"},
            }
        }
    return response


def _error_codes(entry: RouteEntry, op: Operation) -> dict[int, list[str]]:
    raised: list[type[BoxOfficeError] | tuple[int, str]] = [errors.ValidationError]
    if op.role is not None:
        raised.append(Unauthorized)
    raised += op.errors
    # Answered for a method the path does not have (documented with each of its operations).
    raised.append(MethodNotAllowed)
    if entry.content_types != JSON_BODIES:
        raised.append(UNSUPPORTED_MEDIA_TYPE)
    raised.append(RateLimited)
    if op.database:
        raised.append(ServiceUnavailable)
    by_status: dict[int, list[str]] = defaultdict(list)
    for error in raised:
        status, code = error if isinstance(error, tuple) else (error.status, error.code)
        if code not in by_status[status]:
            by_status[status].append(code)
    return dict(sorted(by_status.items()))


def _operation(
    entry: RouteEntry, op: Operation, schema_of: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": entry.view_name,
        "summary": op.summary,
        "tags": [op.tag],
    }
    description = op.description
    if op.role in (CUSTOMER, MANAGER):
        description = f"Requires the {op.role} role (403 `Forbidden` otherwise). {description}"
    if description.strip():
        doc["description"] = description.strip()
    parameters: list[dict[str, Any]] = []
    for model, location in ((op.path_params, "path"), (op.query, "query"), (op.headers, "header")):
        if model is not None:
            parameters += _parameters(model, location)
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {JSON: {"schema": schema_of[op.body]}}}
    if op.role is not None:
        doc["security"] = [{BEARER: []}]

    if op.response is not None:
        content = {JSON: {"schema": schema_of[op.response]}}
    else:
        content = {media: {"schema": schema} for media, schema in op.media.items()}
    success = {200: "OK", 201: "Created"}[op.status]
    responses: dict[str, Any] = {str(op.status): {"description": success, "content": content}}
    if op.etag:
        etag = {
            "ETag": {
                "description": "A strong entity tag of this representation",
                "required": True,
                "schema": {"type": "string"},
            }
        }
        responses[str(op.status)]["headers"] = etag
        responses["304"] = {
            "description": "Not Modified: `If-None-Match` names the current ETag (no body)",
            "headers": etag,
        }
    for status, codes in _error_codes(entry, op).items():
        body = op.error_bodies.get(status)
        responses[str(status)] = _error_response(
            entry, op, codes, schema_of[body] if body else None
        )
    doc["responses"] = responses
    return doc


def _schemas(
    routes: list[tuple[RouteEntry, Operation]],
) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """Each request and answer type's schema (a $ref), and the components they refer to."""
    modes: dict[Any, JsonSchemaMode] = {ErrorBody: "serialization"}
    for _, op in routes:
        if op.body is not None:
            modes[op.body] = "validation"
        for answer in (op.response, *op.error_bodies.values()):
            if answer is not None:
                modes.setdefault(answer, "serialization")
    refs, definitions = TypeAdapter.json_schemas(
        [(kind, mode, TypeAdapter(kind)) for kind, mode in modes.items()],
        ref_template=REF,
        schema_generator=SchemaGenerator,
    )
    return {kind: refs[(kind, mode)] for kind, mode in modes.items()}, definitions["$defs"]


def build_document(app: Chalice) -> dict[str, Any]:
    routes = list(routes_of(app))
    schema_of, components = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for entry, op in routes:
        paths.setdefault(entry.uri_pattern, {})[entry.method.lower()] = _operation(
            entry, op, schema_of
        )
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "boxoffice", "version": "1", "description": DESCRIPTION},
        # Relative to this document's own URL, so it works under any host and stage prefix.
        "servers": [{"url": ".", "description": "this server"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The token from POST /auth/signup or POST /auth/login",
                }
            },
        },
    }
