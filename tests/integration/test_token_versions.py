"""Tokens end when their user changes, over a real HTTP socket: a password reset or a change of
role (the admin command, or SQL) bumps the user's token version and every older token is refused
with 401 on every authenticated route; manager routes check the role in the database, not only in
the token; and a valid token for a user who no longer exists is a 401, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from chalicelib import admin
from chalicelib.web import tokens
from tests.support.data import session_body
from tests.support.live_server import serve_in_thread
from tests.support.openapi_check import served_document

PROTECTED = [
    (method.upper(), path)
    for path, operations in served_document()["paths"].items()
    for method, operation in operations.items()
    if "security" in operation
]


@pytest.fixture(scope="module")
def live_url(app_module) -> Iterator[str]:
    with serve_in_thread(app_module.app) as url:
        yield url


def call(url: str, method: str, path: str, token: str, body=None) -> requests.Response:
    return requests.request(
        method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def every_protected_route(url: str, token: str, session_id: str) -> dict[str, requests.Response]:
    """One request to each authenticated route, with a body that would be valid."""
    ids = {"{session_id}": session_id, "{reservation_id}": str(uuid.uuid4())}
    bodies = {
        ("POST", "/sessions"): session_body(),
        ("POST", "/reservations"): {"session_id": session_id, "seats": ["B1"]},
    }
    answers = {}
    for method, template in PROTECTED:
        path = template
        for placeholder, value in ids.items():
            path = path.replace(placeholder, value)
        answers[f"{method} {template}"] = call(
            url, method, path, token, bodies.get((method, template))
        )
    return answers


def assert_all_401(answers: dict[str, requests.Response]) -> None:
    assert len(answers) == 8
    for route, answer in answers.items():
        assert answer.status_code == 401, (route, answer.status_code, answer.text)
        assert answer.json()["Code"] == "Unauthorized", route


def create_user(email: str, password: str, role: str) -> None:
    argv = ["create-user", "--email", email, "--password", password, "--role", role]
    assert admin.main(argv) == 0


def log_in(url: str, email: str, password: str) -> str:
    answer = requests.post(
        f"{url}/auth/login", json={"email": email, "password": password}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def test_a_password_reset_ends_every_older_token(live_url, make_session, capsys):
    session = make_session()
    create_user("ana@example.com", "first-password", "CUSTOMER")
    old = log_in(live_url, "ana@example.com", "first-password")
    assert call(live_url, "GET", "/me/purchases", old).status_code == 200
    create_user("ana@example.com", "first-password", "CUSTOMER")  # nothing changed: still valid
    assert call(live_url, "GET", "/me/purchases", old).status_code == 200

    create_user("ana@example.com", "second-password", "CUSTOMER")
    assert_all_401(every_protected_route(live_url, old, session["id"]))
    new = log_in(live_url, "ana@example.com", "second-password")
    held = call(
        live_url, "POST", "/reservations", new, {"session_id": session["id"], "seats": ["A1"]}
    )
    assert held.status_code == 201


def test_a_demoted_manager_is_refused_by_the_database_not_the_token(live_url, make_session, db):
    session = make_session()
    create_user("boss@example.com", "boss-password", "MANAGER")
    token = log_in(live_url, "boss@example.com", "boss-password")
    stats = f"/sessions/{session['id']}/stats"
    assert call(live_url, "GET", stats, token).status_code == 200

    create_user("boss@example.com", "boss-password", "CUSTOMER")  # demoted by the admin command
    assert call(live_url, "POST", "/sessions", token, session_body()).status_code == 401
    assert call(live_url, "GET", stats, token).status_code == 401
    assert db.execute("SELECT count(*) AS n FROM sessions").fetchone()["n"] == 1

    # Promoted again, then demoted with plain SQL: the old tokens stay refused either way.
    create_user("boss@example.com", "boss-password", "MANAGER")
    token = log_in(live_url, "boss@example.com", "boss-password")
    assert call(live_url, "GET", stats, token).status_code == 200
    db.execute("UPDATE users SET role = 'CUSTOMER' WHERE email = 'boss@example.com'")
    assert call(live_url, "GET", stats, token).status_code == 401
    assert call(live_url, "POST", "/sessions", token, session_body()).status_code == 401


def test_a_role_in_the_token_that_the_database_does_not_hold_is_refused(
    live_url, make_user, make_session, db
):
    """A token signed with the right secret whose role the user does not have (a leaked secret,
    or a role changed behind the application's back without a version bump)."""
    session = make_session()
    customer = make_user()
    forged = tokens.issue(customer["id"], "MANAGER")
    assert call(live_url, "POST", "/sessions", forged, session_body()).status_code == 401
    assert call(live_url, "GET", f"/sessions/{session['id']}/stats", forged).status_code == 401
    assert db.execute("SELECT count(*) AS n FROM sessions").fetchone()["n"] == 1


def test_a_token_of_a_user_who_no_longer_exists_is_401_everywhere(
    live_url, make_user, make_session, db
):
    session = make_session()
    for role in ("CUSTOMER", "MANAGER"):
        gone = make_user(role)
        db.execute("DELETE FROM users WHERE id = %s", (gone["id"],))
        assert_all_401(every_protected_route(live_url, gone["token"], session["id"]))


def test_tokens_without_a_version_are_refused(live_url, customer):
    import time

    import jwt

    from chalicelib.settings import get_settings

    now = int(time.time())
    claims = {"sub": customer["id"], "role": "CUSTOMER", "iss": "boxoffice", "iat": now}
    unversioned = jwt.encode({**claims, "exp": now + 600}, get_settings().jwt_secret)
    assert call(live_url, "GET", "/me/purchases", unversioned).status_code == 401
    assert call(live_url, "GET", "/me/purchases", customer["token"]).status_code == 200
