"""The local HTTP edge (devtools/edge.py): WSGI requests in, API Gateway proxy events to the
Chalice app, its answers out; what API Gateway itself refuses is refused here."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from chalice import Chalice, Response

from devtools.edge import Edge, Routes


class Unreadable(io.RawIOBase):
    def read(self, *_: Any) -> bytes:
        raise AssertionError("the body was read")


def app_recording_events() -> tuple[Chalice, list[dict[str, Any]]]:
    app = Chalice(app_name="edge-test")
    seen: list[dict[str, Any]] = []

    @app.route("/items/{item_id}", methods=["GET", "POST"], content_types=["*/*"])
    def item(item_id):
        request = app.current_request
        seen.append(
            {
                "item_id": item_id,
                "query": dict(request.query_params or {}),
                "headers": dict(request.headers),
                "raw_body": request.raw_body,
                "source_ip": request.context["identity"]["sourceIp"],
                "path": request.path,
            }
        )
        return Response({"ok": item_id}, headers={"X-Item": item_id})

    @app.route("/items/new")
    def new_item():
        return {"new": True}

    return app, seen


def call(
    edge: Edge, method: str, path: str, *, body: bytes = b"", query: str = "", **extra: Any
) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REMOTE_ADDR": "203.0.113.7",
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": io.BytesIO(body),
        **extra,
    }
    chunks = edge(environ, start_response)
    return answer["status"], answer["headers"], b"".join(chunks)


def test_routes_match_like_api_gateway() -> None:
    routes = Routes(["/sessions", "/sessions/{session_id}", "/sessions/{session_id}/seats", "/"])

    assert routes.match("/sessions/") == ("/sessions", {})
    assert routes.match("/sessions/abc/seats") == (
        "/sessions/{session_id}/seats",
        {"session_id": "abc"},
    )
    # Decoded ";" and "?" belong to the parameter (urlparse would have cut the path there).
    assert routes.match("/sessions/a;b") == ("/sessions/{session_id}", {"session_id": "a;b"})
    assert routes.match("/sessions/a?b") == ("/sessions/{session_id}", {"session_id": "a?b"})
    assert routes.match("/") == ("/", {})
    assert routes.match("/sessions//seats") is None
    assert routes.match("/nothing") is None


def test_a_request_becomes_the_proxy_event_and_the_answer_comes_back() -> None:
    app, seen = app_recording_events()
    status, headers, body = call(
        Edge(app, "local"),
        "POST",
        "/items/42",
        body=b'{"a": 1}',
        query="x=1&x=2&y=",
        HTTP_X_TRACE="t-1",
        CONTENT_TYPE="application/json",
    )

    assert status == "200 OK"
    assert json.loads(body) == {"ok": "42"}
    assert headers["X-Item"] == "42"
    assert headers["Content-Length"] == str(len(body))
    (event,) = seen
    assert event["item_id"] == "42"
    assert event["query"] == {"x": "2", "y": ""}  # the last value, as Chalice's MultiDict gives
    assert event["headers"]["x-trace"] == "t-1"
    assert event["headers"]["content-type"] == "application/json"
    assert event["raw_body"] == b'{"a": 1}'
    assert event["source_ip"] == "203.0.113.7"
    assert event["path"] == "/items/{item_id}"


def test_bytes_that_are_not_text_reach_the_app_unchanged() -> None:
    app, seen = app_recording_events()
    call(Edge(app, "local"), "POST", "/items/1", body=b"\xff\xfe{")
    assert seen[0]["raw_body"] == b"\xff\xfe{"


def test_a_literal_route_wins_over_a_parameter() -> None:
    app, _ = app_recording_events()
    _, _, body = call(Edge(app, "local"), "GET", "/items/new")
    assert json.loads(body) == {"new": True}


def test_an_unknown_path_is_a_json_404() -> None:
    app, _ = app_recording_events()
    status, headers, body = call(Edge(app, "local"), "GET", "/nope")
    assert status == "404 Not Found"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["Code"] == "NotFound"


@pytest.mark.parametrize("length", ["16385", "99999999999", "-1", "ten"])
def test_an_oversize_or_broken_length_is_refused_unread(length: str) -> None:
    app, seen = app_recording_events()
    status, headers, body = call(
        Edge(app, "local"),
        "POST",
        "/items/1",
        CONTENT_LENGTH=length,
        **{"wsgi.input": Unreadable()},
    )
    assert status == "400 Bad Request"
    assert json.loads(body)["Code"] == "ValidationError"
    assert headers["Connection"] == "close"
    assert seen == []


def test_process_variables_are_not_request_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """granian starts each environ from the process environment: HTTP_PROXY set for the
    process must not reach the app as a `proxy` header (httpoxy)."""
    import devtools.edge

    monkeypatch.setattr(devtools.edge, "_PROCESS_VARIABLES", frozenset({"HTTP_PROXY"}))
    app, seen = app_recording_events()
    call(Edge(app, "local"), "GET", "/items/1", HTTP_PROXY="http://evil", HTTP_ACCEPT="*/*")
    assert "proxy" not in seen[0]["headers"]
    assert seen[0]["headers"]["accept"] == "*/*"


def test_a_304_goes_out_without_a_body_or_a_length() -> None:
    app = Chalice(app_name="edge-304")

    @app.route("/thing")
    def thing():
        return Response("", status_code=304, headers={"ETag": '"abc"'})

    status, headers, body = call(Edge(app, "local"), "GET", "/thing")
    assert status == "304 Not Modified"
    assert body == b""
    assert headers["ETag"] == '"abc"'
    assert "Content-Length" not in headers and "Content-Type" not in headers
