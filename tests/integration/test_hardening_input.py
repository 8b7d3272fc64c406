"""Hostile request bodies over a real HTTP socket: JSON nested deeper than 32 levels is a 400
ValidationError on every route, whatever the headers (an Idempotency-Key included), and never
reaches anything that parses it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from chalicelib.web.schemas import MAX_JSON_DEPTH
from tests.support.live_server import serve_in_thread
from tests.support.openapi_check import served_document


@pytest.fixture(scope="module")
def live_url(app_module) -> Iterator[str]:
    with serve_in_thread(app_module.app) as url:
        yield url


def every_route() -> list[tuple[str, str]]:
    paths = served_document()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def concrete(path: str) -> str:
    return (
        path.replace("{session_id}", str(uuid.uuid4()))
        .replace("{reservation_id}", str(uuid.uuid4()))
        .replace("{asset}", "swagger-ui.css")
    )


@pytest.mark.parametrize(("method", "path"), every_route())
def test_deep_json_is_400_on_every_route_whatever_the_headers(live_url, customer, method, path):
    deep = b"[" * 5000
    for headers in (
        {},
        {"Authorization": f"Bearer {customer['token']}"},
        {"Authorization": f"Bearer {customer['token']}", "Idempotency-Key": "deep-1"},
    ):
        answer = requests.request(
            method,
            live_url + concrete(path),
            data=deep,
            headers={"Content-Type": "application/json", **headers},
            timeout=10,
        )
        assert answer.status_code == 400, (method, path, headers, answer.text)
        assert answer.json()["Code"] == "ValidationError"
        assert str(MAX_JSON_DEPTH) in answer.json()["Message"]


def test_payment_with_a_key_and_5000_brackets_is_400_not_500(live_url, customer, make_session):
    """The case from the issue: the idempotency fingerprint used to parse the body itself."""
    session = make_session()
    auth = {"Authorization": f"Bearer {customer['token']}"}
    held = requests.post(
        f"{live_url}/reservations",
        json={"session_id": session["id"], "seats": ["A1"]},
        headers=auth,
        timeout=10,
    ).json()
    answer = requests.post(
        f"{live_url}/reservations/{held['id']}/payment",
        data=b"[" * 5000,
        headers={**auth, "Idempotency-Key": "pay-deep", "Content-Type": "application/json"},
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["Code"] == "ValidationError"


def test_nesting_at_the_limit_is_left_to_the_route(live_url, customer, make_session):
    """32 levels pass the edge (the route's own validation answers); 33 do not."""
    auth = {"Authorization": f"Bearer {customer['token']}", "Content-Type": "application/json"}
    at_limit = b'{"seats": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    over = b'{"seats": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"
    passed = requests.post(f"{live_url}/reservations", data=at_limit, headers=auth, timeout=10)
    refused = requests.post(f"{live_url}/reservations", data=over, headers=auth, timeout=10)
    assert passed.status_code == refused.status_code == 400
    assert "nested" not in passed.json()["Message"]  # the model's own complaint
    assert "nested" in refused.json()["Message"]
    # Brackets inside strings are text, not nesting.
    in_text = b'{"session_id": "' + b"[" * 100 + b'", "seats": ["A1"]}'
    answer = requests.post(f"{live_url}/reservations", data=in_text, headers=auth, timeout=10)
    assert answer.status_code == 400 and "nested" not in answer.json()["Message"]
