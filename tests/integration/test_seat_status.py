"""One seat-status rule (chalicelib.domain.seating.seat_status) behind every answer: the seat map
and the session read from the cache or from PostgreSQL give the same text, and the sessions list,
which counts available seats in SQL, agrees with the rule."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.cache import loader, seat_maps, snapshots
from chalicelib.domain.seating import count_available
from tests.support.data import move_hold_end


def hold(client, who, session_id, seats):
    answer = client.post(
        "/reservations", {"session_id": session_id, "seats": seats}, token=who["token"]
    )
    assert answer.status == 201, answer.body
    return answer.body


def a_session_with_every_kind_of_seat(client, make_user, make_session, db) -> str:
    """Sold, held in time, held past its time (not expired yet), released, and never touched."""
    sid = make_session()["id"]
    buyer, holder, late, quitter = (make_user() for _ in range(4))
    sold = hold(client, buyer, sid, ["A1", "A2"])
    assert client.post(f"/reservations/{sold['id']}/payment", token=buyer["token"]).status == 200
    hold(client, holder, sid, ["A3"])
    lapsed = hold(client, late, sid, ["B1", "B2", "B3"])
    move_hold_end(db, lapsed["id"], -timedelta(seconds=1))
    released = hold(client, quitter, sid, ["B4"])
    assert client.delete(f"/reservations/{released['id']}", token=quitter["token"]).status == 200
    return sid


def test_the_cached_and_the_postgres_path_give_the_same_text(
    client, make_user, make_session, db, monkeypatch
):
    sid = a_session_with_every_kind_of_seat(client, make_user, make_session, db)
    for _ in range(2):  # rebuilt, then from this process's copy
        warm = (seat_maps.seat_map_with_etag(sid), seat_maps.session_json(sid))
    assert seat_maps.cached_snapshot(sid) is not None
    monkeypatch.setattr(seat_maps, "cached_snapshot", lambda session_id: None)  # as Redis down
    assert (seat_maps.seat_map_with_etag(sid), seat_maps.session_json(sid)) == warm
    statuses = [s["status"] for s in client.get(f"/sessions/{sid}/seats").body["seats"]]
    assert statuses[:6] == ["SOLD", "SOLD", "RESERVED", "AVAILABLE", "AVAILABLE", "AVAILABLE"]


def test_the_sessions_list_counts_available_seats_by_the_domain_rule(
    client, make_user, make_session, db
):
    sid = a_session_with_every_kind_of_seat(client, make_user, make_session, db)
    listed = {s["id"]: s for s in client.get("/sessions").body["items"]}[sid]
    facts = loader.load_snapshot(sid).facts()
    by_rule = count_available(facts, snapshots.now_us())
    assert listed["available_seats"] == by_rule == 16 - 3
    assert client.get(f"/sessions/{sid}").body == listed
