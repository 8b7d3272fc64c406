"""The OpenAPI 3.0 document, generated from the models that validate requests (chalicelib/web/
schemas.py) and the response models declared beside them, and from the error classes the code
raises (chalicelib/domain/errors.py): nothing in it is hand-written JSON that could drift.

OpenAPI 3.0.3 rather than 3.1 because the packaged Swagger UI (4.x) renders only 3.0; pydantic
writes JSON Schema 2020-12, so `to_openapi30` rewrites the few constructs 3.0 spells differently.

`OPERATIONS` lists every route of app.py once; tests/integration/test_openapi.py checks it against
`app.routes` both ways (path, method, view function name, accepted content types).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from chalicelib.domain import errors
from chalicelib.domain.errors import BoxOfficeError
from chalicelib.web import schemas

OPENAPI_VERSION = "3.0.3"
REF = "#/components/schemas/{model}"
BEARER = "bearerAuth"

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

JSON = "application/json"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    view: str  # the app.py function: also the operationId
    summary: str
    tag: str
    status: int  # the success status
    response: type[BaseModel] | None  # its JSON body, or None for `media`
    errors: tuple[type[BoxOfficeError], ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_model: type[BaseModel] | None = None
    header_model: type[BaseModel] | None = None
    role: str | None = None  # None: public; "any": any signed-in user; else the role required
    database: bool = True  # answers 503 ServiceUnavailable when PostgreSQL is down
    any_content_type: bool = False  # the route takes content_types=["*/*", ...] in app.py
    media: dict[str, dict[str, Any]] = field(default_factory=dict)  # non-JSON success bodies
    overrides: dict[int, type[BaseModel]] = field(default_factory=dict)  # non-ErrorBody errors
    description: str = ""
    etag: bool = False  # the answer carries an ETag; If-None-Match with it answers 304


HOLD_ERRORS = (
    errors.Forbidden,
    errors.NotFound,
    errors.SeatUnavailable,
    errors.InvalidState,
    errors.HoldLimitReached,
    errors.IdempotencyKeyInProgress,
    errors.IdempotencyKeyReused,
)
TEXT = {"type": "string"}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/health",
        "health_check",
        "Health of the service and its dependencies",
        "operations",
        200,
        schemas.Health,
        overrides={503: schemas.HealthUnavailable},
        description="200 while PostgreSQL answers (status `degraded` when Redis or the AWS "
        "endpoint does not: seats still sell); 503 when PostgreSQL is down. A failing check "
        'reads `"unavailable"`; why goes to the log. The AWS check is reused for 5 s. Rate '
        "limited like every route (without Redis the limits are off, and it still answers).",
    ),
    Operation(
        "GET",
        "/openapi.json",
        "openapi_document",
        "This OpenAPI document",
        "docs",
        200,
        None,
        database=False,
        media={JSON: TypeAdapter(dict[str, Any]).json_schema()},
    ),
    Operation(
        "GET",
        "/api-docs",
        "api_docs",
        "Swagger UI over this document",
        "docs",
        200,
        None,
        database=False,
        media={"text/html": TEXT},
    ),
    Operation(
        "GET",
        "/api-docs/{asset}",
        "api_docs_asset",
        "Swagger UI's scripts and style sheet",
        "docs",
        200,
        None,
        errors=(errors.NotFound,),
        path_model=schemas.DocsAssetPath,
        database=False,
        media={"text/javascript": TEXT, "text/css": TEXT},
    ),
    Operation(
        "GET",
        "/app",
        "seat_map_page",
        "The seat-map page: pick, hold and pay in a browser",
        "docs",
        200,
        None,
        database=False,
        media={"text/html": TEXT},
        description="`/app?session=<id>` opens that session's seat map, kept live by polling "
        "the seat map with `If-None-Match`. Plain HTML, CSS and JavaScript served by the app.",
    ),
    Operation(
        "GET",
        "/app/{asset}",
        "seat_map_page_asset",
        "The seat-map page's script, style sheet and icon",
        "docs",
        200,
        None,
        errors=(errors.NotFound,),
        path_model=schemas.PageAssetPath,
        database=False,
        media={"text/javascript": TEXT, "text/css": TEXT, "image/svg+xml": TEXT},
    ),
    Operation(
        "POST",
        "/auth/signup",
        "sign_up",
        "Create a customer account",
        "auth",
        201,
        schemas.SignedUp,
        errors=(errors.Conflict,),
        body=schemas.SignUp,
        any_content_type=True,
        description="409 `Conflict` when an account with this email (in any letter case) exists.",
    ),
    Operation(
        "POST",
        "/auth/login",
        "log_in",
        "Exchange email and password for a bearer token",
        "auth",
        200,
        schemas.LoggedIn,
        errors=(errors.Unauthorized,),
        body=schemas.Credentials,
        any_content_type=True,
        description="An unknown email and a wrong password get the same 401.",
    ),
    Operation(
        "POST",
        "/sessions",
        "create_session",
        "Create a session and all its seats",
        "sessions",
        201,
        schemas.Session,
        errors=(errors.Forbidden,),
        body=schemas.SessionCreate,
        role="MANAGER",
        any_content_type=True,
        description="Seats are labelled row letter + number: rows A.., numbers "
        "1..seats_per_row. 400 when there would be fewer than 16 seats or `starts_at` is past.",
    ),
    Operation(
        "GET",
        "/sessions",
        "list_sessions",
        "Upcoming sessions, soonest first, a page at a time",
        "sessions",
        200,
        schemas.SessionPage,
        query=schemas.SessionPageQuery,
    ),
    Operation(
        "GET",
        "/sessions/{session_id}",
        "get_session",
        "One session, with its seats available now",
        "sessions",
        200,
        schemas.Session,
        errors=(errors.NotFound,),
        path_model=schemas.SessionPath,
    ),
    Operation(
        "GET",
        "/sessions/{session_id}/seats",
        "seat_map",
        "The session's seat map",
        "sessions",
        200,
        schemas.SeatMap,
        errors=(errors.NotFound,),
        path_model=schemas.SessionPath,
        header_model=schemas.ConditionalHeader,
        etag=True,
        description="A hold whose time has passed shows AVAILABLE even before it is expired. "
        "The answer's `ETag` changes whenever a seat's status does (a lapsed hold too) and is "
        "the same from every instance; send it back as `If-None-Match` to get 304 with no body "
        "while nothing has changed. A warm 304 is answered from the cache alone.",
    ),
    Operation(
        "GET",
        "/sessions/{session_id}/stats",
        "session_stats",
        "Sales and expiry counters, kept by the analytics subscriber",
        "sessions",
        200,
        schemas.SessionStats,
        errors=(errors.Forbidden, errors.NotFound),
        path_model=schemas.SessionPath,
        role="MANAGER",
        description="Eventually consistent: counted from the events, not by the request.",
    ),
    Operation(
        "POST",
        "/reservations",
        "hold_seats",
        "Hold 1-10 seats of a session, all or none",
        "reservations",
        201,
        schemas.Reservation,
        errors=HOLD_ERRORS,
        body=schemas.HoldRequest,
        header_model=schemas.IdempotencyHeader,
        role="CUSTOMER",
        any_content_type=True,
        description="404 for an unknown session or seat label; 409 `SeatUnavailable` (the body's "
        "`seats` names them), `InvalidState` (the session has started) or `HoldLimitReached` "
        "(the customer would hold and own more than SEATS_PER_CUSTOMER seats of the session).",
    ),
    Operation(
        "GET",
        "/reservations/{reservation_id}",
        "get_reservation",
        "One of the caller's reservations",
        "reservations",
        200,
        schemas.Reservation,
        errors=(errors.NotFound,),
        path_model=schemas.ReservationPath,
        role="any",
        description="Another customer's reservation answers 404.",
    ),
    Operation(
        "DELETE",
        "/reservations/{reservation_id}",
        "cancel_reservation",
        "Cancel a hold; its seats are free at once",
        "reservations",
        200,
        schemas.Reservation,
        errors=(errors.NotFound, errors.InvalidState, errors.HoldExpired),
        path_model=schemas.ReservationPath,
        role="any",
        description="Cancelling again answers the same 200. 409 `InvalidState` when it is paid; "
        "410 `HoldExpired` when its time has passed.",
    ),
    Operation(
        "POST",
        "/reservations/{reservation_id}/payment",
        "pay_reservation",
        "Pay a hold: its seats become SOLD",
        "reservations",
        200,
        schemas.Sale,
        errors=(
            errors.NotFound,
            errors.InvalidState,
            errors.IdempotencyKeyInProgress,
            errors.HoldExpired,
            errors.IdempotencyKeyReused,
        ),
        path_model=schemas.ReservationPath,
        header_model=schemas.IdempotencyHeader,
        role="any",
        any_content_type=True,
        description="Paying again returns the same sale. 409 `InvalidState` when it was "
        "cancelled; 410 `HoldExpired` when its time has passed. No request body.",
    ),
    Operation(
        "GET",
        "/me/purchases",
        "purchases",
        "The caller's purchases, newest first",
        "me",
        200,
        schemas.PurchaseList,
        role="any",
    ),
    Operation(
        "GET",
        "/me/receipts",
        "receipts",
        "The caller's receipts, recorded by the notifications subscriber",
        "me",
        200,
        schemas.ReceiptList,
        role="any",
        description="Eventually consistent: one receipt per sale, recorded from its event.",
    ),
)

TAGS = [
    {"name": "auth", "description": "Customer accounts and bearer tokens"},
    {"name": "sessions", "description": "Screenings and their seats"},
    {"name": "reservations", "description": "Holds, cancellations and payments"},
    {"name": "me", "description": "The signed-in customer's history"},
    {"name": "operations", "description": "Health"},
    {"name": "docs", "description": "This document, Swagger UI and the seat-map page"},
]

DESCRIPTION = """\
Cinema ticketing: sessions, seat maps, seat holds that expire, payments.

* JSON in and out, UTF-8. Times are ISO-8601 with a zone; money is integer cents; ids are UUIDs.
* Request bodies are at most 16 KiB and are validated strictly: wrong types, missing fields and
  unknown fields answer 400 `ValidationError`.
* Every 4xx/5xx answer is JSON with a machine-readable `Code` and a human `Message`.
* Calls that change state take `Authorization: Bearer <token>` from `/auth/signup` or `/auth/login`.
  Managers are created from the command line, never over HTTP.
* Every route is rate limited per caller: 429 `RateLimited` with `Retry-After` (seconds);
  `/auth/signup` and `/auth/login` also share a tighter limit per client IP.
* JSON nested deeper than 32 levels answers 400 `ValidationError` on every route.
* A method a path does not have answers 405 `MethodNotAllowed`, with an `Allow` header.
"""


# --- JSON Schema 2020-12 (pydantic) to OpenAPI 3.0 -----------------------------------------------


def to_openapi30(schema: Any, *, keep_title: bool = False) -> Any:
    """Rewrite what OpenAPI 3.0 spells differently: `anyOf [X, null]` is `nullable`, `const` is a
    one-value `enum`, `examples` is one `example`, a `$ref` takes no sibling keywords."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: to_openapi30(value) if key not in ("properties", "enum", "default") else value
        for key, value in schema.items()
        if not (key == "title" and not keep_title)
    }
    if "properties" in out:
        out["properties"] = {name: to_openapi30(s) for name, s in out["properties"].items()}
    if "anyOf" in out:
        branches = [b for b in out["anyOf"] if b != {"type": "null"}]
        if len(branches) < len(out["anyOf"]):
            out.pop("anyOf")
            if out.get("default", "") is None:
                out.pop("default")
            if len(branches) == 1:
                branch = branches[0]
                base = {"allOf": [branch]} if "$ref" in branch else dict(branch)
                out = {**base, **out, "nullable": True}
            else:
                out = {**out, "anyOf": branches, "nullable": True}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out:
        examples = out.pop("examples")
        if isinstance(examples, list) and examples:
            out["example"] = examples[0]
    if "$ref" in out and len(out) > 1:
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _parameters(model: type[BaseModel], location: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
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
            "schema": to_openapi30(prop),
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
    if op.header_model is not None:
        reasons.append("the Idempotency-Key header is malformed")
    reasons.append(f"the request body is over {schemas.MAX_BODY_BYTES // 1024} KiB")
    return "; ".join(reasons)


def _error_response(
    op: Operation, codes: list[str], *, retry_after: bool = False, model: str = "ErrorBody"
) -> dict[str, Any]:
    when = {**WHEN, "ValidationError": _invalid_input(op)}
    if op.path.startswith("/auth/"):
        when["ServiceUnavailable"] = WHEN["SignInBusy"]
    description = "; ".join(f"`{code}`: {when.get(code, code)}" for code in codes)
    schema: dict[str, Any] = {"$ref": REF.format(model=model)}
    if model == "ErrorBody":
        schema = {"allOf": [schema, {"type": "object", "properties": {"Code": {"enum": codes}}}]}
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if retry_after:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 60},
            }
        }
    if codes == [errors.MethodNotAllowed.code]:
        response["headers"] = {
            "Allow": {
                "description": "The methods this path has, e.g. `GET, POST`",
                "required": True,
                "schema": {"type": "string"},
            }
        }
    return response


def _error_codes(op: Operation) -> dict[int, list[str]]:
    raised: list[tuple[int, str]] = [(errors.ValidationError.status, errors.ValidationError.code)]
    if op.role is not None:
        raised.append((errors.Unauthorized.status, errors.Unauthorized.code))
    raised += [(error.status, error.code) for error in op.errors]
    # Answered for a method the path does not have (documented with each of its operations).
    raised.append((errors.MethodNotAllowed.status, errors.MethodNotAllowed.code))
    if not op.any_content_type:
        raised.append(UNSUPPORTED_MEDIA_TYPE)
    raised.append((errors.RateLimited.status, errors.RateLimited.code))
    if op.database:
        raised.append((errors.ServiceUnavailable.status, errors.ServiceUnavailable.code))
    by_status: dict[int, list[str]] = defaultdict(list)
    for status, code in raised:
        if code not in by_status[status]:
            by_status[status].append(code)
    return dict(sorted(by_status.items()))


def _operation(op: Operation, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op.view,
        "summary": op.summary,
        "tags": [op.tag],
    }
    description = op.description
    if op.role in ("CUSTOMER", "MANAGER"):
        description = f"Requires the {op.role} role (403 `Forbidden` otherwise). {description}"
    if description.strip():
        doc["description"] = description.strip()
    parameters: list[dict[str, Any]] = []
    for model, location in (
        (op.path_model, "path"),
        (op.query, "query"),
        (op.header_model, "header"),
    ):
        if model is not None:
            parameters += _parameters(model, location)
    if parameters:
        doc["parameters"] = parameters
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {JSON: {"schema": refs[op.body]}}}
    if op.role is not None:
        doc["security"] = [{BEARER: []}]

    if op.response is not None:
        content = {JSON: {"schema": refs[op.response]}}
    else:
        content = {media: {"schema": to_openapi30(s)} for media, s in op.media.items()}
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
    for status, codes in _error_codes(op).items():
        override = op.overrides.get(status)
        responses[str(status)] = _error_response(
            op,
            codes,
            retry_after=status == errors.RateLimited.status,
            model=override.__name__ if override else "ErrorBody",
        )
    doc["responses"] = responses
    return doc


def _models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = [schemas.ErrorBody]
    for op in OPERATIONS:
        for model in (op.body, op.response, *op.overrides.values()):
            if model is not None and model not in seen:
                seen.append(model)
    return seen


def build_document() -> dict[str, Any]:
    models = _models()
    modes = [
        (model, "validation" if model in {op.body for op in OPERATIONS} else "serialization")
        for model in models
    ]
    refs_by_key, definitions = models_json_schema(modes, ref_template=REF)
    refs = {model: refs_by_key[(model, mode)] for model, mode in modes}
    components = {
        name: to_openapi30(schema, keep_title=True)
        for name, schema in sorted(definitions.get("$defs", {}).items())
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "boxoffice", "version": "1", "description": DESCRIPTION},
        # Relative to this document's own URL, so it works under any host and stage prefix.
        "servers": [{"url": ".", "description": "this server"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": components,
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
