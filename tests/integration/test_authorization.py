"""Who may do what, over HTTP through the Chalice app: reservations and purchases are their owner's
alone; only managers create sessions and read their stats, and managers are made only by the admin
command; every protected route refuses missing, expired, tampered, foreign and unsigned tokens."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest

from chalicelib import admin
from chalicelib.settings import get_settings
from tests.support.data import session_body
from tests.support.openapi_check import served_document

SECRET = "test-secret-of-at-least-thirty-two-characters"

# Every operation the document marks as needing a bearer token, with a body that would be valid.
PROTECTED = [
    (method.upper(), path)
    for path, operations in served_document()["paths"].items()
    for method, operation in operations.items()
    if "security" in operation
]


def hold(client, who, session_id, seats):
    return client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=who["token"]
    )


@pytest.fixture
def owned(client, customer, make_session):
    """A session and the customer's pending hold on A1."""
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1"])
    assert reservation.status == 201
    return session, reservation.body


# --- reservations and purchases belong to their customer ---------------------------------------


def test_another_customers_reservation_is_404_to_read_cancel_and_pay(
    client, customer, make_user, owned, db
):
    _, reservation = owned
    stranger = make_user()
    path = f"/reservations/{reservation['id']}"
    for answer in (
        client.get(path, token=stranger["token"]),
        client.delete(path, token=stranger["token"]),
        client.post(f"{path}/payment", token=stranger["token"]),
        client.post(f"{path}/payment", token=stranger["token"], headers={"Idempotency-Key": "k1"}),
    ):
        assert answer.status == 404 and answer.code == "NotFound"
        assert reservation["id"] in answer.body["Message"]  # the same words as an unknown id
    unknown = client.get(f"/reservations/{uuid.uuid4()}", token=stranger["token"])
    assert unknown.status == 404 and set(unknown.body) == {"Code", "Message"}
    # Nothing happened to it.
    mine = client.get(path, token=customer["token"])
    assert mine.status == 200 and mine.body["status"] == "PENDING"
    assert db.execute("SELECT count(*) AS n FROM sales").fetchone()["n"] == 0


def test_a_manager_cannot_read_cancel_or_pay_a_customers_reservation(client, manager, owned):
    _, reservation = owned
    path = f"/reservations/{reservation['id']}"
    assert client.get(path, token=manager["token"]).status == 404
    assert client.delete(path, token=manager["token"]).status == 404
    assert client.post(f"{path}/payment", token=manager["token"]).status == 404


def test_purchases_and_receipts_show_only_the_callers_own(client, customer, make_user, owned):
    _, reservation = owned
    paid = client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"])
    assert paid.status == 200
    stranger = make_user()
    assert client.get("/me/purchases", token=stranger["token"]).body == {"items": []}
    assert client.get("/me/receipts", token=stranger["token"]).body == {"items": []}
    mine = client.get("/me/purchases", token=customer["token"]).body["items"]
    assert [p["id"] for p in mine] == [paid.body["id"]]


# --- roles -------------------------------------------------------------------------------------


def test_a_customer_cannot_create_sessions_or_read_stats(client, customer, make_session, db):
    answer = client.post("/sessions", session_body(), token=customer["token"])
    assert answer.status == 403 and answer.code == "Forbidden"
    assert db.execute("SELECT count(*) AS n FROM sessions").fetchone()["n"] == 0
    session = make_session()
    stats = client.get(f"/sessions/{session['id']}/stats", token=customer["token"])
    assert stats.status == 403 and stats.code == "Forbidden"


def test_a_manager_does_not_hold_seats(client, manager, make_session):
    session = make_session()
    answer = hold(client, manager, session["id"], ["A1"])
    assert answer.status == 403 and answer.code == "Forbidden"


def test_sign_up_only_ever_makes_customers(client):
    for extra in ({"role": "MANAGER"}, {"Role": "MANAGER"}, {"is_admin": True}):
        answer = client.post(
            "/auth/signup",
            {"email": "eve@example.com", "password": "password123", "name": "Eve", **extra},
        )
        assert answer.status == 400 and answer.code == "ValidationError", extra
    made = client.post(
        "/auth/signup", {"email": "eve@example.com", "password": "password123", "name": "Eve"}
    )
    assert made.status == 201 and made.body["user"]["role"] == "CUSTOMER"
    claims = jwt.decode(
        made.body["token"],
        SECRET,
        algorithms=["HS256"],
        issuer="boxoffice",
        audience="boxoffice-test",
    )
    assert claims["role"] == "CUSTOMER"
    assert client.post("/sessions", session_body(), token=made.body["token"]).status == 403


def test_managers_come_from_the_admin_command(client, capsys):
    argv = ["create-user", "--email", "boss@example.com", "--password", "password123"]
    assert admin.main([*argv, "--role", "MANAGER"]) == 0
    assert admin.main([*argv, "--role", "MANAGER"]) == 0  # idempotent
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["created"] for p in printed] == [True, False]
    assert printed[0]["user"]["role"] == "MANAGER"
    login = client.post("/auth/login", {"email": "boss@example.com", "password": "password123"})
    assert login.status == 200
    created = client.post("/sessions", session_body(), token=login.body["token"])
    assert created.status == 201


# --- tokens ------------------------------------------------------------------------------------


def _claims(user_id: str, **changes) -> dict:
    now = int(time.time())
    return {
        "sub": user_id,
        "role": "CUSTOMER",
        "iss": "boxoffice",
        "aud": "boxoffice-test",
        "iat": now,
        "exp": now + 600,
        **changes,
    }


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(customer: dict) -> dict[str, str | None]:
    user = customer["id"]
    now = int(time.time())
    header, payload, signature = customer["token"].split(".")
    as_manager = _b64({**jwt.decode(customer["token"], options={"verify_signature": False}),
                       "role": "MANAGER"})  # fmt: skip
    return {
        "missing": None,
        "empty": "",
        "garbage": "not-a-token",
        "expired": jwt.encode(_claims(user, iat=now - 7200, exp=now - 3600), SECRET),
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "tampered role": f"{header}.{as_manager}.{signature}",
        "other secret": jwt.encode(_claims(user), "x" * 40, algorithm="HS256"),
        "alg none": jwt.encode(_claims(user), None, algorithm="none"),
        "alg none, signature kept": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}",
        "alg NONE": f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{payload}.",
        "alg HS512, same secret": jwt.encode(_claims(user), SECRET + "-" * 20, algorithm="HS512"),
        "wrong issuer": jwt.encode(_claims(user, iss="someone-else"), SECRET),
        "another stage's": jwt.encode(_claims(user, aud="boxoffice-prod"), SECRET),
        "no audience": jwt.encode({k: v for k, v in _claims(user).items() if k != "aud"}, SECRET),
        "no expiry": jwt.encode({k: v for k, v in _claims(user).items() if k != "exp"}, SECRET),
        "not yet valid": jwt.encode(_claims(user, nbf=now + 3600), SECRET),
        "unknown role": jwt.encode(_claims(user, role="ADMIN"), SECRET),
    }


def _headers(token: str | None) -> dict[str, str]:
    return {} if token is None else {"authorization": f"Bearer {token}"}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_every_protected_route_refuses_bad_tokens(client, customer, owned):
    session, reservation = owned
    assert get_settings().jwt_secret == SECRET
    ids = {"{session_id}": session["id"], "{reservation_id}": reservation["id"]}
    bodies = {
        ("POST", "/sessions"): session_body(),
        ("POST", "/reservations"): {"session_id": session["id"], "seats": ["B1"]},
    }
    assert set(PROTECTED) == {
        ("POST", "/sessions"),
        ("GET", "/sessions/{session_id}/stats"),
        ("POST", "/reservations"),
        ("GET", "/reservations/{reservation_id}"),
        ("DELETE", "/reservations/{reservation_id}"),
        ("POST", "/reservations/{reservation_id}/payment"),
        ("GET", "/me/purchases"),
        ("GET", "/me/receipts"),
    }
    for name, token in bad_tokens(customer).items():
        for method, template in PROTECTED:
            path = template
            for placeholder, value in ids.items():
                path = path.replace(placeholder, value)
            answer = client.request(
                method, path, json_body=bodies.get((method, template)), headers=_headers(token)
            )
            assert answer.status == 401, (name, method, template, answer.body)
            assert answer.code == "Unauthorized" and answer.body["Message"], (name, template)
    # The real token still works, and nothing above changed the hold.
    still = client.get(f"/reservations/{reservation['id']}", token=customer["token"])
    assert still.status == 200 and still.body["status"] == "PENDING"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "bearer  {token} extra"],
)
def test_malformed_authorization_headers_are_401(client, customer, header):
    answer = client.get(
        "/me/purchases", headers={"authorization": header.format(token=customer["token"])}
    )
    assert answer.status == 401 and answer.code == "Unauthorized"
