"""The OpenAPI document: valid OpenAPI 3.1, one operation per route of the app's registry and no
other, built from the same models that validate requests; the answers of a whole purchase conform
to it; and Swagger UI with its files is served from the package."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from chalicelib.domain import errors
from chalicelib.settings import get_settings
from chalicelib.web import errors as http_errors
from chalicelib.web import openapi
from chalicelib.web.registry import routes_of
from chalicelib.web.routes import docs
from chalicelib.web.routes import page as seat_map_page
from chalicelib.web.routes.accounts import Credentials, SignUp
from chalicelib.web.routes.reservations import HoldRequest
from chalicelib.web.routes.sessions import SessionCreate
from tests.support.data import session_body
from tests.support.openapi_check import assert_conforms, served_document

ERROR_CODES = {
    cls.code
    for module in (errors, http_errors)
    for cls in vars(module).values()
    if isinstance(cls, type) and issubclass(cls, errors.BoxOfficeError)
} | {"UnsupportedMediaType"}
API_REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# Served from files in the package: these never need PostgreSQL, so never answer 503.
STATIC_PATHS = ("/openapi.json", "/api-docs", "/api-docs/{asset}", "/app", "/app/{asset}")


@pytest.fixture(scope="module")
def document() -> dict:
    return served_document()


def test_document_is_valid_openapi_3_1(document):
    validate(document)
    assert document["openapi"].startswith("3.1.")  # JSON Schema 2020-12, as pydantic writes it


def test_every_route_is_declared_with_what_the_document_says(app_module):
    """The registry: each route of the app was declared through it (routes_of refuses one that
    was not), under a tag the document describes, once per path and method."""
    routes = list(routes_of(app_module.app))
    assert len(routes) == sum(len(methods) for methods in app_module.app.routes.values())
    tags = {tag["name"] for tag in openapi.TAGS}
    for entry, operation in routes:
        assert operation.summary and operation.tag in tags, entry.view_name
        assert (operation.response is None) != (not operation.media), entry.view_name
        if entry.view_args:
            assert operation.path_params is not None, entry.view_name
        if entry.method == "POST":
            assert "*/*" in entry.content_types, entry.view_name


def test_the_api_reference_names_every_route_and_no_other(app_module):
    declared = {f"{entry.method} {entry.uri_pattern}" for entry, _ in routes_of(app_module.app)}
    named = set(re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`]*)`", API_REFERENCE.read_text()))
    assert declared - named == set(), "routes docs/api.md does not describe"
    assert named - declared == set(), "routes docs/api.md names that the app does not have"


def test_every_route_is_documented_and_nothing_else(app_module, document):
    routes = {
        (path, method): entry
        for path, methods in app_module.app.routes.items()
        for method, entry in methods.items()
    }
    documented = {
        (path, method.upper()): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert set(routes) == set(documented)
    for key, entry in routes.items():
        operation = documented[key]
        assert operation["operationId"] == entry.view_name, key
        takes_any = "*/*" in entry.content_types
        assert ("415" not in operation["responses"]) == takes_any, key
        if entry.view_args:
            path_params = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert path_params == set(entry.view_args), key


def test_request_bodies_are_the_validating_models(document):
    components = document["components"]["schemas"]
    for model in (SignUp, Credentials, SessionCreate, HoldRequest):
        generated = model.model_json_schema(
            ref_template=openapi.REF, schema_generator=openapi.SchemaGenerator
        )
        assert components[model.__name__] == generated
        assert components[model.__name__]["additionalProperties"] is False  # unknown fields: 400
    hold = components["HoldRequest"]["properties"]["seats"]
    assert (hold["minItems"], hold["maxItems"], hold["uniqueItems"]) == (1, 10, True)
    sessions = components["SessionCreate"]["properties"]
    assert (sessions["rows"]["minimum"], sessions["rows"]["maximum"]) == (1, 26)
    assert (sessions["seats_per_row"]["minimum"], sessions["seats_per_row"]["maximum"]) == (1, 50)
    assert sessions["price_cents"]["minimum"] == 0
    assert components["SignUp"]["properties"]["password"]["minLength"] == 8


def test_parameters_headers_and_security(document):
    paths = document["paths"]
    limit, cursor = paths["/sessions"]["get"]["parameters"]
    assert limit["name"] == "limit" and limit["in"] == "query" and not limit["required"]
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    assert cursor["name"] == "cursor" and cursor["schema"]["maxLength"] == 512
    for path in ("/reservations", "/reservations/{reservation_id}/payment"):
        (header,) = [p for p in paths[path]["post"]["parameters"] if p["in"] == "header"]
        assert header["name"] == "Idempotency-Key" and not header["required"]
        assert header["schema"]["maxLength"] == 255
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            if "security" in operation:
                assert "401" in operation["responses"], (method, path)
            elif path != "/auth/login":  # bad credentials are its 401
                assert "401" not in operation["responses"], (method, path)
    assert "security" not in paths["/sessions"]["get"]
    assert "security" not in paths["/sessions/{session_id}/seats"]["get"]


def test_error_responses_name_their_codes(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = response["content"]["application/json"]["schema"]
                if "allOf" in schema:
                    ref, codes = schema["allOf"]
                    assert ref == {"$ref": "#/components/schemas/ErrorBody"}
                    assert set(codes["properties"]["Code"]["enum"]) <= ERROR_CODES
                if status == "429":
                    assert response["headers"]["Retry-After"]["required"] is True
            assert "429" in operation["responses"], (method, path)
            if path not in STATIC_PATHS:
                assert "503" in operation["responses"], (method, path)
    holds = document["paths"]["/reservations"]["post"]["responses"]
    assert set(holds) == {"201", "400", "401", "403", "404", "405", "409", "422", "429", "503"}
    conflict = holds["409"]["content"]["application/json"]["schema"]["allOf"][1]
    assert conflict["properties"]["Code"]["enum"] == [
        "SeatUnavailable",
        "InvalidState",
        "HoldLimitReached",
        "IdempotencyKeyInProgress",
    ]
    assert "SEATS_PER_CUSTOMER" in holds["409"]["description"]


def test_every_path_documents_405_with_allow(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"]["405"]
            schema = answer["content"]["application/json"]["schema"]["allOf"][1]
            assert schema["properties"]["Code"]["enum"] == ["MethodNotAllowed"], (method, path)
            assert answer["headers"]["Allow"]["required"] is True, (method, path)
    assert "405 `MethodNotAllowed`" in document["info"]["description"]


def test_served_document_is_the_built_one(client, app_module, document):
    answer = client.get("/openapi.json")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.body == document
    assert json.loads(docs.document_text(app_module.app)) == document
    assert openapi.build_document(app_module.app) == document


def test_swagger_ui_page_and_its_files(client):
    page = client.get("/api-docs")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "cdn" not in page.body.lower() and "https://" not in page.body
    for asset, content_type in (
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-initializer.js", "text/javascript; charset=utf-8"),
    ):
        assert f'"api-docs/{asset}"' in page.body
        answer = client.get(f"/api-docs/{asset}")
        assert answer.status == 200, asset
        assert answer.headers["Content-Type"] == content_type
        assert len(answer.body) > 100 and "sourceMappingURL" not in answer.body[-200:]
    initializer = client.get("/api-docs/swagger-initializer.js").body
    assert '"openapi.json"' in initializer and "validatorUrl: null" in initializer
    for missing in ("index.html", "swagger-ui.js.map", "..%2Fapp.py", "x"):
        answer = client.get(f"/api-docs/{missing}")
        assert answer.status == 404 and answer.code == "NotFound", missing


def test_seat_map_page_and_its_files(client, hold_seconds):
    hold_seconds(7)
    page = client.get("/app")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert "unsafe" not in policy and "require-trusted-types-for 'script'" in policy
    assert page.headers["Cache-Control"] == "no-cache"
    assert "https://" not in page.body and "http://" not in page.body  # relative URLs only
    settings = get_settings()
    assert (
        f'name="boxoffice:seats-per-customer" content="{settings.seats_per_customer}"' in page.body
    )
    assert 'name="boxoffice:hold-seconds" content="7"' in page.body
    for asset, content_type in (
        ("app.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("icon.svg", "image/svg+xml; charset=utf-8"),
    ):
        digest = seat_map_page.versioned(asset).split("?v=")[1]
        assert f'"app/{asset}?v={digest}"' in page.body
        answer = client.get(f"/app/{asset}")
        assert answer.status == 200, asset
        assert answer.headers["Content-Type"] == content_type
        assert "immutable" in answer.headers["Cache-Control"]
        assert answer.body == (seat_map_page.FILES / asset).read_text(encoding="utf-8")
    for missing in ("index.html", "app.js.map", "..%2Fapp.py", "x"):
        answer = client.get(f"/app/{missing}")
        assert answer.status == 404 and answer.code == "NotFound", missing


def test_a_whole_purchase_conforms_to_the_document(client, document, manager, customer):
    """Random data rarely gets a hold or a payment through; this walks the success paths and
    checks every answer, success or error, against the document."""

    def check(method, template, answer, **values):
        assert_conforms(document, method, template, answer.status, answer.body, answer.headers)
        return answer

    signed = check(
        "POST",
        "/auth/signup",
        client.post(
            "/auth/signup", {"email": "doc@example.com", "password": "password123", "name": "Doc"}
        ),
    )
    assert signed.status == 201
    check(
        "POST",
        "/auth/login",
        client.post("/auth/login", {"email": "doc@example.com", "password": "password123"}),
    )
    check(
        "POST",
        "/auth/login",
        client.post("/auth/login", {"email": "doc@example.com", "password": "wrong-password"}),
    )
    session = check(
        "POST", "/sessions", client.post("/sessions", session_body(), token=manager["token"])
    ).body
    check("POST", "/sessions", client.post("/sessions", session_body(), token=customer["token"]))
    check("GET", "/sessions", client.get("/sessions?limit=1"))
    check("GET", "/sessions", client.get("/sessions?limit=0"))
    check("GET", "/sessions/{session_id}", client.get(f"/sessions/{session['id']}"))
    check("GET", "/sessions/{session_id}", client.get(f"/sessions/{uuid.uuid4()}"))
    path = "/reservations"
    held = check(
        "POST",
        path,
        client.post(
            path,
            {"session_id": session["id"], "seats": ["A1", "A2"]},
            token=customer["token"],
            headers={"Idempotency-Key": "doc-1"},
        ),
    )
    assert held.status == 201
    taken = check(
        "POST",
        path,
        client.post(
            path, {"session_id": session["id"], "seats": ["A2"]}, token=signed.body["token"]
        ),
    )
    assert taken.status == 409 and taken.body["seats"] == ["A2"]
    check("GET", "/sessions/{session_id}/seats", client.get(f"/sessions/{session['id']}/seats"))
    one = "/reservations/{reservation_id}"
    check("GET", one, client.get(f"/reservations/{held.body['id']}", token=customer["token"]))
    sale = check(
        "POST",
        one + "/payment",
        client.post(f"/reservations/{held.body['id']}/payment", token=customer["token"]),
    )
    assert sale.status == 200
    check("DELETE", one, client.delete(f"/reservations/{held.body['id']}", token=customer["token"]))
    check("GET", "/me/purchases", client.get("/me/purchases", token=customer["token"]))
    check("GET", "/me/receipts", client.get("/me/receipts", token=customer["token"]))
    check("GET", "/me/receipts", client.get("/me/receipts"))
    check(
        "GET",
        "/sessions/{session_id}/stats",
        client.get(f"/sessions/{session['id']}/stats", token=manager["token"]),
    )
    check("GET", "/health", client.get("/health"))
