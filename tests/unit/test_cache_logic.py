"""The pure parts of the Redis layer: the circuit breaker, seat statuses computed at read time,
Retry-After, and what makes two requests the same for an Idempotency-Key."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.cache import CircuitBreaker
from chalicelib.cache.snapshots import (
    END_OF_TIME_US,
    Snapshot,
    Views,
    render_seat_map,
    render_session,
    to_json,
)
from chalicelib.domain.errors import ValidationError
from chalicelib.web.idempotency import fingerprint, idempotency_key, worth_replaying
from chalicelib.web.rate_limits import retry_after_seconds

# --- circuit breaker ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_skips_redis_for_the_cool_down_then_lets_one_probe_through():
    clock = FakeClock()
    breaker = CircuitBreaker(cool_down=1.5, clock=clock)
    assert breaker.allow() and not breaker.is_open
    assert breaker.failed() is True  # first failure: the caller logs it
    assert not breaker.allow()
    clock.now += 1.4
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else keeps skipping while it runs
    assert breaker.failed() is False  # still down: not logged again
    clock.now += 1.6
    assert breaker.allow()
    assert breaker.succeeded() is True
    assert breaker.allow() and breaker.allow() and not breaker.is_open
    assert breaker.succeeded() is False


# --- seat statuses at read time ----------------------------------------------------------------

NOW = 1_900_000_000_000_000  # microseconds


seat_states = st.lists(
    st.tuples(st.booleans(), st.one_of(st.none(), st.integers(NOW - 10**7, NOW + 10**7))),
    min_size=16,
    max_size=60,
)


@given(seat_states, st.integers(NOW - 10**7, NOW + 10**7))
def test_available_seats_counts_the_map_s_available_seats(states, now):
    seats = [[f"A{i + 1}", "A", i + 1, sold, until] for i, (sold, until) in enumerate(states)]
    snapshot = Snapshot({"id": "s", "total_seats": len(seats)}, seats)
    seat_map = render_seat_map("s", snapshot, now)
    session = render_session(snapshot, now)
    available = sum(1 for s in seat_map["seats"] if s["status"] == "AVAILABLE")
    assert session["available_seats"] == available
    assert list(session) == ["id", "total_seats", "available_seats"]
    assert [list(s) for s in seat_map["seats"]] == [["label", "row", "number", "status"]] * len(
        seats
    )


def test_a_hold_reads_available_once_its_time_has_passed():
    snapshot = Snapshot({}, [["A1", "A", 1, False, NOW + 5_000_000]])
    assert render_seat_map("s", snapshot, NOW)["seats"][0]["status"] == "RESERVED"
    assert render_seat_map("s", snapshot, NOW + 5_000_000)["seats"][0]["status"] == "AVAILABLE"


@given(seat_states, st.integers(NOW - 10**7, NOW + 10**7), st.integers(0, 3 * 10**7))
def test_rendered_views_stay_true_until_they_say(states, now, later):
    """The JSON rendered at `now` is what rendering at any moment before valid_until gives."""
    seats = [[f"A{i + 1}", "A", i + 1, sold, until] for i, (sold, until) in enumerate(states)]
    snapshot = Snapshot({"id": "s", "total_seats": len(seats)}, seats)
    views = Views.render("s", snapshot, now)
    moment = now + later
    same = moment < views.valid_until_us
    assert (views.seat_map_json == to_json(render_seat_map("s", snapshot, moment))) or not same
    assert (views.session_json == to_json(render_session(snapshot, moment))) or not same
    live = [u for s, u in states if not s and u is not None and u > now]
    assert views.valid_until_us == (min(live) if live else END_OF_TIME_US)


@given(seat_states)
def test_snapshot_round_trips(states):
    seats = [[f"B{i + 1}", "B", i + 1, sold, until] for i, (sold, until) in enumerate(states)]
    snapshot = Snapshot({"id": "x", "movie": "Filme \u00e9"}, seats)
    assert Snapshot.decode(snapshot.encode()) == snapshot


# --- Retry-After -------------------------------------------------------------------------------


@given(st.integers(1, 10**9))
def test_retry_after_is_whole_seconds_between_1_and_60(wait_ms):
    seconds = retry_after_seconds(wait_ms)
    assert 1 <= seconds <= 60
    assert seconds * 1000 >= min(wait_ms, 60_000)  # never tells the caller to come back early


# --- Idempotency-Key -----------------------------------------------------------------------------


def request_with(key: str | None) -> SimpleNamespace:
    return SimpleNamespace(headers={} if key is None else {"idempotency-key": key})


@pytest.mark.parametrize("key", ["a", "k" * 255, "with space", "~!@#$%^&*()"])
def test_valid_keys(key):
    assert idempotency_key(request_with(key)) == key


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\t", "new\nline", "caf\u00e9", "\x7f"])
def test_invalid_keys(key):
    with pytest.raises(ValidationError):
        idempotency_key(request_with(key))


def test_no_key_means_no_idempotency():
    assert idempotency_key(request_with(None)) is None


def test_fingerprint_compares_json_by_meaning():
    same = fingerprint("POST", "/reservations", "hold", b'{"a": 1, "b": [1, 2]}')
    assert same == fingerprint("post", "/reservations", "hold", b'{"b":[1,2],"a":1}')
    assert same != fingerprint("POST", "/reservations", "hold", b'{"a": 1, "b": [2, 1]}')
    assert same != fingerprint("POST", "/reservations/x/payment", "hold", b'{"a":1,"b":[1,2]}')
    assert same != fingerprint("POST", "/reservations", "pay:x", b'{"a":1,"b":[1,2]}')
    assert fingerprint("POST", "/p", "s", None) == fingerprint("POST", "/p", "s", b"")
    assert fingerprint("POST", "/p", "s", b"not json") != fingerprint("POST", "/p", "s", b"")


@pytest.mark.parametrize(
    ("status", "code", "kept"),
    [
        (200, None, True),
        (201, None, True),
        (409, "SeatUnavailable", True),
        (409, "InvalidState", True),
        (409, "HoldLimitReached", True),
        (410, "HoldExpired", True),
        (400, "ValidationError", False),
        (401, "Unauthorized", False),
        (403, "Forbidden", False),
        (404, "NotFound", False),
        (409, "IdempotencyKeyInProgress", False),
        (422, "IdempotencyKeyReused", False),
        (429, "RateLimited", False),
        (503, "ServiceUnavailable", False),
    ],
)
def test_which_answers_are_kept_under_a_key(status, code, kept):
    assert worth_replaying(status, code) is kept
