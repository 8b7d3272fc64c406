"""The seat map's ETag: 304 for a client that has the current map, a new tag whenever a seat's
status changes (a lapsed hold too, with nothing written), the same tag from every instance and
from PostgreSQL as from the cache, and a warm 304 that never touches PostgreSQL."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
import requests

from chalicelib import cache
from chalicelib.cache import invalidations, loader, local_copies, seat_maps, snapshots
from chalicelib.db import close_pool
from chalicelib.settings import get_settings
from devtools.net import free_port
from tests.support.live_server import serve_in_process


def seats_url(session_id: str) -> str:
    return f"/sessions/{session_id}/seats"


def etag_of(client, session_id: str) -> str:
    answer = client.get(seats_url(session_id))
    assert answer.status == 200, answer.body
    return answer.headers["ETag"]


def etag_from_postgres(session_id: str) -> str:
    """What the Redis-down path answers: the map read from PostgreSQL, hashed."""
    snapshot = loader.load_snapshot(session_id)
    return snapshots.seat_map_etag(
        snapshots.seat_map_json(session_id, snapshot, snapshots.now_us())
    )


def hold(client, customer, session_id, seats) -> dict[str, Any]:
    answer = client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=customer["token"]
    )
    assert answer.status == 201, answer.body
    return answer.body


def sleep_past(moment: str) -> None:
    time.sleep(max(0.0, datetime.fromisoformat(moment).timestamp() - time.time()) + 0.1)


def test_the_current_etag_gets_304_with_no_body(client, make_session):
    session = make_session()
    first = client.get(seats_url(session["id"]))
    etag = first.headers["ETag"]
    assert first.status == 200 and etag.startswith('"') and etag.endswith('"')
    assert first.headers["Cache-Control"] == "no-cache"
    for field in (etag, f"W/{etag}", f'"something-else", {etag}', "*"):
        again = client.get(seats_url(session["id"]), headers={"If-None-Match": field})
        assert again.status == 304, field
        assert again.body is None, field
        assert again.headers["ETag"] == etag
    for field in ('"something-else"', etag.strip('"'), f"{etag} {etag}"):
        full = client.get(seats_url(session["id"]), headers={"If-None-Match": field})
        assert full.status == 200 and full.body == first.body, field
    unknown = "00000000-0000-4000-8000-000000000000"
    assert client.get(seats_url(unknown), headers={"If-None-Match": "*"}).status == 404


def test_the_etag_follows_every_status_change_and_only_those(
    client, make_user, make_session, hold_seconds
):
    session = make_session()
    sid = session["id"]
    buyer, other = make_user(), make_user()
    empty = etag_of(client, sid)
    assert etag_of(client, sid) == empty  # reading changes nothing

    held = hold(client, buyer, sid, ["A1", "A2"])
    after_hold = etag_of(client, sid)
    assert after_hold != empty
    assert client.post(f"/reservations/{held['id']}/payment", token=buyer["token"]).status == 200
    after_sale = etag_of(client, sid)
    assert after_sale not in (empty, after_hold)

    cancelled = hold(client, other, sid, ["B1"])
    assert etag_of(client, sid) != after_sale
    assert client.delete(f"/reservations/{cancelled['id']}", token=other["token"]).status == 200
    assert etag_of(client, sid) == after_sale  # the same seats again: the same tag

    hold_seconds(1)
    lapsing = hold(client, other, sid, ["B2"])
    assert etag_of(client, sid) != after_sale
    sleep_past(lapsing["expires_at"])
    # Nothing was written when the hold ran out (no expiry handler runs here): the read sees it.
    assert etag_of(client, sid) == after_sale
    assert etag_from_postgres(sid) == after_sale


def test_postgres_and_the_cache_give_the_same_etag(client, make_user, make_session, monkeypatch):
    session = make_session()
    sid = session["id"]
    buyer = make_user()
    held = hold(client, buyer, sid, ["A3"])
    warm = etag_of(client, sid)
    assert seat_maps.cached_snapshot(sid) is not None  # that answer came from the cache
    assert warm == etag_from_postgres(sid)

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    cache.reset()
    local_copies.copies.snapshots.clear()
    try:
        assert seat_maps.cached_snapshot(sid) is None  # Redis is down: PostgreSQL answers
        assert etag_of(client, sid) == warm
        assert (
            client.post(f"/reservations/{held['id']}/payment", token=buyer["token"]).status == 200
        )
        cold_after_sale = etag_of(client, sid)
        assert cold_after_sale != warm
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        cache.reset()
        invalidations.unsent.flush()
    assert etag_of(client, sid) == cold_after_sale


def test_a_warm_304_never_touches_postgres(client, make_session, monkeypatch):
    warm_session, cold_session = make_session(), make_session()
    sid = warm_session["id"]
    etag = etag_of(client, sid)
    assert etag_of(client, sid) == etag  # the second read keeps this process's copy

    # PostgreSQL out of reach for this process: a new pool pointed at a port nobody listens on.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    get_settings.cache_clear()
    close_pool()
    try:
        cold = client.get(seats_url(cold_session["id"]))
        assert cold.status == 503, cold.body  # proof that PostgreSQL is really unreachable
        for _ in range(3):
            answer = client.get(seats_url(sid), headers={"If-None-Match": etag})
            assert answer.status == 304 and answer.headers["ETag"] == etag
        assert client.get(seats_url(sid)).headers["ETag"] == etag
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        close_pool()


@pytest.mark.slow
def test_two_instances_agree_on_the_etag_and_when_it_changes(make_user, make_session):
    """Two app processes on two ports, one Redis and one PostgreSQL: each change shows at both
    at once, with the same tag, and that tag is the one PostgreSQL's map hashes to."""
    session = make_session()
    sid = session["id"]
    buyer, other = make_user(), make_user()

    env = {"HOLD_SECONDS": "2"}
    with serve_in_process(env) as (first, _), serve_in_process(env) as (second, _):
        urls = [first, second]

        def tags() -> list[str]:
            answers = [requests.get(f"{url}{seats_url(sid)}", timeout=10) for url in urls]
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            return [a.headers["ETag"] for a in answers]

        def both_move_from(previous: str) -> str:
            first, second = tags()
            assert first == second != previous
            assert first == etag_from_postgres(sid)
            for url in urls:
                not_modified = requests.get(
                    f"{url}{seats_url(sid)}", headers={"If-None-Match": first}, timeout=10
                )
                assert not_modified.status_code == 304 and not_modified.content == b""
            return first

        def call(method: str, url: str, path: str, who, **kw) -> dict[str, Any]:
            answer = requests.request(
                method,
                f"{url}{path}",
                headers={"Authorization": f"Bearer {who['token']}"},
                timeout=10,
                **kw,
            )
            assert answer.status_code < 300, answer.text
            return answer.json()

        def hold_at(url: str, who, seat: str) -> dict[str, Any]:
            return call(
                "POST", url, "/reservations", who, json={"session_id": sid, "seats": [seat]}
            )

        first_url, second_url = urls
        empty, same = tags()
        assert empty == same == etag_from_postgres(sid)

        held = hold_at(first_url, buyer, "A1")
        after_hold = both_move_from(empty)
        call("POST", second_url, f"/reservations/{held['id']}/payment", buyer)
        after_sale = both_move_from(after_hold)
        cancelled = hold_at(second_url, other, "B1")
        both_move_from(after_sale)
        call("DELETE", first_url, f"/reservations/{cancelled['id']}", other)
        assert tags() == [after_sale, after_sale]

        lapsing = hold_at(first_url, other, "B2")
        while_held = both_move_from(after_sale)
        sleep_past(lapsing["expires_at"])
        assert tags() == [after_sale, after_sale] != [while_held, while_held]
