"""Every endpoint of the contract: its success and each error status, through the Chalice app."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.support.data import move_hold_end, session_body


def hold(client, customer, session_id, seats, **kw):
    return client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"], **kw
    )


# --- auth -------------------------------------------------------------------------------------


def test_signup_login_and_duplicate_email(client):
    answer = client.post(
        "/auth/signup", {"email": "ana@example.com", "password": "s3cret-pass", "name": "Ana"}
    )
    assert answer.status == 201
    assert answer.body["user"]["role"] == "CUSTOMER"
    assert answer.body["user"]["email"] == "ana@example.com"
    assert set(answer.body["user"]) == {"id", "email", "name", "role"}
    assert (
        jwt.decode(answer.body["token"], options={"verify_signature": False})["sub"]
        == answer.body["user"]["id"]
    )

    again = client.post(
        "/auth/signup", {"email": "ANA@example.com", "password": "another-pass", "name": "Ana 2"}
    )
    assert again.status == 409

    login = client.post("/auth/login", {"email": "ana@example.com", "password": "s3cret-pass"})
    assert login.status == 200 and login.body["token"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.com", "password": "short", "name": "X"},
        {"email": "x@example.com", "password": "p" * 129, "name": "X"},
        {"email": "not-an-email", "password": "long-enough", "name": "X"},
        {"email": "x@example.com", "password": "long-enough"},
        {"email": "x@example.com", "password": "long-enough", "name": "X", "role": "MANAGER"},
        {"email": "x@example.com", "password": 12345678, "name": "X"},
    ],
)
def test_signup_rejects_bad_input(client, body):
    answer = client.post("/auth/signup", body)
    assert answer.status == 400
    assert answer.code == "ValidationError"


def test_login_wrong_password_and_unknown_email_look_the_same(client, customer):
    wrong = client.post("/auth/login", {"email": customer["email"], "password": "wrong-password"})
    unknown = client.post("/auth/login", {"email": "nobody@example.com", "password": "whatever1"})
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body
    assert wrong.code == "Unauthorized"


def test_malformed_json_and_oversize_bodies_are_400(client):
    assert client.request("POST", "/auth/signup", raw=b"{not json").status == 400
    assert client.request("POST", "/auth/signup", raw=b"").code == "ValidationError"
    big = b'{"email": "' + b"a" * 20000 + b'@x.io", "password": "12345678", "name": "x"}'
    answer = client.request("POST", "/auth/signup", raw=big)
    assert answer.status == 400 and answer.code == "ValidationError"


def test_missing_tampered_and_foreign_tokens_are_401(client, customer):
    assert client.post("/reservations", {}).status == 401
    assert client.post("/reservations", {}).code == "Unauthorized"
    assert client.get("/me/purchases", token="garbage").status == 401
    header, payload, signature = customer["token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}xx"
    assert client.get("/me/purchases", token=tampered).status == 401
    forged = jwt.encode(
        {"sub": customer["id"], "role": "MANAGER", "iss": "boxoffice", "iat": 0, "exp": 4102444800},
        "another-secret",
        algorithm="HS256",
    )
    assert client.get("/me/purchases", token=forged).status == 401
    unsigned = jwt.encode(
        {
            "sub": customer["id"],
            "role": "CUSTOMER",
            "iss": "boxoffice",
            "iat": 0,
            "exp": 4102444800,
        },
        None,
        algorithm="none",
    )
    assert client.get("/me/purchases", token=unsigned).status == 401
    expired = jwt.encode(
        {"sub": customer["id"], "role": "CUSTOMER", "iss": "boxoffice", "iat": 0, "exp": 1},
        "test-secret-of-at-least-thirty-two-characters",
        algorithm="HS256",
    )
    assert client.get("/me/purchases", token=expired).status == 401


# --- sessions ---------------------------------------------------------------------------------


def test_manager_creates_session_with_all_seats(client, manager, db):
    answer = client.post("/sessions", session_body(rows=4, seats_per_row=5), token=manager["token"])
    assert answer.status == 201
    session = answer.body
    assert session["total_seats"] == 20 and session["available_seats"] == 20
    assert session["price_cents"] == 2500 and session["movie"] == "Filme X - 19:00"
    labels = [
        r["label"]
        for r in db.execute(
            "SELECT label FROM seats WHERE session_id = %s ORDER BY id", (session["id"],)
        )
    ]
    assert labels[:6] == ["A1", "A2", "A3", "A4", "A5", "B1"] and labels[-1] == "D5"


def test_customer_cannot_create_sessions(client, customer):
    answer = client.post("/sessions", session_body(), token=customer["token"])
    assert answer.status == 403 and answer.code == "Forbidden"


@pytest.mark.parametrize(
    "overrides",
    [
        {"rows": 1, "seats_per_row": 15},
        {"rows": 27},
        {"seats_per_row": 51},
        {"price_cents": -1},
        {"price_cents": "2500"},
        {"price_cents": 25.5},
        {"starts_at": "2030-01-01T19:00:00"},
        {"starts_at": "tomorrow"},
        {"starts_at": "2001-01-01T19:00:00Z"},
        {"movie": ""},
        {"screen": "IMAX"},
    ],
)
def test_session_validation(client, manager, overrides):
    answer = client.post("/sessions", session_body(**overrides), token=manager["token"])
    assert answer.status == 400, answer.body
    assert answer.code == "ValidationError"


def test_list_sessions_pages_upcoming_soonest_first(client, make_session):
    now = datetime.now(UTC)
    made = [make_session(starts_at=(now + timedelta(hours=h)).isoformat()) for h in (5, 1, 3)]
    first = client.get("/sessions?limit=2")
    assert first.status == 200
    assert [s["id"] for s in first.body["items"]] == [made[1]["id"], made[2]["id"]]
    assert first.body["next_cursor"]
    second = client.get(f"/sessions?limit=2&cursor={first.body['next_cursor']}")
    assert [s["id"] for s in second.body["items"]] == [made[0]["id"]]
    assert second.body["next_cursor"] is None
    assert set(first.body["items"][0]) == {
        "id",
        "movie",
        "room",
        "starts_at",
        "price_cents",
        "total_seats",
        "available_seats",
    }


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "cursor=%%%", "cursor=e30"])
def test_list_sessions_rejects_bad_paging(client, query):
    answer = client.get(f"/sessions?{query}")
    assert answer.status == 400 and answer.code == "ValidationError"


def test_unknown_session_is_404(client):
    for path in (f"/sessions/{uuid.uuid4()}", f"/sessions/{uuid.uuid4()}/seats", "/sessions/xyz"):
        answer = client.get(path)
        assert answer.status == 404 and answer.code == "NotFound", path


def test_unknown_route_is_404_json(client):
    assert client.get("/no/such/route").status == 404


# --- holds ------------------------------------------------------------------------------------


def test_hold_then_seat_map_and_counts(client, customer, make_session):
    session = make_session()
    answer = hold(client, customer, session["id"], ["A3", "A1"])
    assert answer.status == 201
    body = answer.body
    assert body["status"] == "PENDING" and body["seats"] == ["A1", "A3"]
    assert body["amount_cents"] == 5000
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(seconds=25) < expires - datetime.now(UTC) <= timedelta(seconds=31)

    seats = {s["label"]: s for s in client.get(f"/sessions/{session['id']}/seats").body["seats"]}
    assert seats["A1"]["status"] == "RESERVED" and seats["A2"]["status"] == "AVAILABLE"
    assert seats["A1"]["row"] == "A" and seats["A1"]["number"] == 1
    assert client.get(f"/sessions/{session['id']}").body["available_seats"] == 14


def test_hold_is_all_or_nothing(client, make_user, make_session, db):
    session = make_session()
    first, second = make_user(), make_user()
    assert hold(client, first, session["id"], ["A2"]).status == 201
    answer = hold(client, second, session["id"], ["A1", "A2", "A3"])
    assert answer.status == 409 and answer.code == "SeatUnavailable"
    assert answer.body["seats"] == ["A2"]
    held = db.execute("SELECT count(*) AS n FROM seats WHERE hold_id IS NOT NULL").fetchone()
    assert held["n"] == 1


@pytest.mark.parametrize(
    ("seats", "status"),
    [
        ([], 400),
        (["A1", "A1"], 400),
        ([f"A{i}" for i in range(1, 12)], 400),
        (["Z1"], 404),
        (["A9"], 404),
        ([1], 400),
    ],
)
def test_hold_validation(client, customer, make_session, seats, status):
    session = make_session()
    answer = hold(client, customer, session["id"], seats)
    assert answer.status == status, answer.body
    assert answer.code == ("ValidationError" if status == 400 else "NotFound")


def test_hold_unknown_session_is_404(client, customer):
    assert hold(client, customer, str(uuid.uuid4()), ["A1"]).status == 404


def test_managers_do_not_hold_seats(client, manager, make_session):
    session = make_session()
    assert hold(client, manager, session["id"], ["A1"]).status == 403


# --- reservations: read, cancel, pay -------------------------------------------------------------


def test_owner_reads_cancels_and_seats_are_free_at_once(client, customer, make_user, make_session):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["B1", "B2"]).body
    path = f"/reservations/{reservation['id']}"
    assert client.get(path, token=customer["token"]).body["status"] == "PENDING"

    cancelled = client.delete(path, token=customer["token"])
    assert cancelled.status == 200 and cancelled.body["status"] == "CANCELLED"
    assert client.delete(path, token=customer["token"]).body == cancelled.body
    assert hold(client, make_user(), session["id"], ["B1", "B2"]).status == 201
    pay = client.post(f"{path}/payment", token=customer["token"])
    assert pay.status == 409 and pay.code == "InvalidState"


def test_other_customers_reservation_is_404(client, customer, make_user, make_session):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1"]).body
    stranger = make_user()
    path = f"/reservations/{reservation['id']}"
    for answer in (
        client.get(path, token=stranger["token"]),
        client.delete(path, token=stranger["token"]),
        client.post(f"{path}/payment", token=stranger["token"]),
    ):
        assert answer.status == 404 and answer.code == "NotFound"
    assert client.get(f"/reservations/{uuid.uuid4()}", token=customer["token"]).status == 404
    assert client.get("/reservations/not-a-uuid", token=customer["token"]).status == 404


def test_payment_sells_is_idempotent_and_shows_in_history(client, customer, make_session):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1", "A2"]).body
    sale = client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"])
    assert sale.status == 200
    assert set(sale.body) == {
        "id",
        "reservation_id",
        "session_id",
        "seats",
        "amount_cents",
        "paid_at",
    }
    assert sale.body["amount_cents"] == 5000 and sale.body["seats"] == ["A1", "A2"]
    again = client.post(f"/reservations/{reservation['id']}/payment", token=customer["token"])
    assert again.status == 200 and again.body == sale.body

    seats = {
        s["label"]: s["status"]
        for s in client.get(f"/sessions/{session['id']}/seats").body["seats"]
    }
    assert seats["A1"] == seats["A2"] == "SOLD"
    read = client.get(f"/reservations/{reservation['id']}", token=customer["token"])
    assert read.body["status"] == "CONFIRMED"
    cancel = client.delete(f"/reservations/{reservation['id']}", token=customer["token"])
    assert cancel.status == 409 and cancel.code == "InvalidState"

    history = client.get("/me/purchases", token=customer["token"]).body["items"]
    assert len(history) == 1
    assert history[0]["id"] == sale.body["id"] and history[0]["movie"] == "Filme X - 19:00"
    assert history[0]["seats"] == ["A1", "A2"] and history[0]["amount_cents"] == 5000


def test_expired_hold_cannot_be_paid_or_cancelled(client, customer, make_session, db):
    session = make_session()
    reservation = hold(client, customer, session["id"], ["A1"]).body
    move_hold_end(db, reservation["id"], -timedelta(seconds=1))
    path = f"/reservations/{reservation['id']}"
    assert client.get(path, token=customer["token"]).body["status"] == "EXPIRED"
    pay = client.post(f"{path}/payment", token=customer["token"])
    assert pay.status == 410 and pay.code == "HoldExpired"
    assert client.delete(path, token=customer["token"]).status == 410
    assert db.execute("SELECT count(*) AS n FROM sales").fetchone()["n"] == 0
    seats = {
        s["label"]: s["status"]
        for s in client.get(f"/sessions/{session['id']}/seats").body["seats"]
    }
    assert seats["A1"] == "AVAILABLE"


def test_health_reports_every_dependency(client):
    answer = client.get("/health")
    assert answer.status == 200
    assert answer.body == {"status": "ok", "checks": {"postgres": "ok", "redis": "ok", "aws": "ok"}}
