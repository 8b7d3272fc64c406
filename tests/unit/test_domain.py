"""The domain core, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import HoldExpired, InvalidState, ValidationError
from chalicelib.domain.reservations import (
    check_can_cancel,
    check_can_pay,
    check_seat_request,
    visible_status,
)
from chalicelib.domain.seating import (
    SeatGrid,
    SeatLabel,
    SeatStatus,
    count_available,
    next_status_change,
    seat_order,
    seat_status,
)

NOW = datetime(2030, 1, 1, 19, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
EARLIER = NOW - timedelta(seconds=1)


def test_grid_labels_in_map_order():
    grid = SeatGrid(2, 8)
    labels = [str(s) for s in grid.labels()]
    assert labels[:3] == ["A1", "A2", "A3"] and labels[8] == "B1" and len(labels) == 16


@pytest.mark.parametrize(
    ("rows", "per_row", "ok"),
    [(2, 8, True), (1, 15, False), (27, 1, False), (1, 51, False), (26, 50, True)],
)
def test_grid_problems(rows, per_row, ok):
    assert (SeatGrid(rows, per_row).problems() == []) is ok


@given(st.integers(1, 26), st.integers(1, 50))
def test_every_generated_label_parses_back_and_is_contained(rows, per_row):
    grid = SeatGrid(rows, per_row)
    for label in grid.labels():
        assert SeatLabel.parse(str(label)) == label
        assert grid.contains(str(label))
    assert not grid.contains(f"A{per_row + 1}")


@given(st.text(max_size=6))
def test_label_parser_never_crashes_and_round_trips(text):
    parsed = SeatLabel.parse(text)
    assert parsed is None or str(parsed) == text


def test_seat_order_is_natural():
    assert sorted(["A10", "B1", "A2"], key=seat_order) == ["A2", "A10", "B1"]


@pytest.mark.parametrize("seats", [[], ["A1", "A1"], [f"A{i}" for i in range(11)]])
def test_bad_seat_requests(seats):
    with pytest.raises(ValidationError):
        check_seat_request(seats)


def test_a_pending_hold_past_its_time_reads_expired():
    assert visible_status("PENDING", EARLIER, NOW).value == "EXPIRED"
    assert visible_status("PENDING", LATER, NOW).value == "PENDING"
    assert visible_status("CONFIRMED", EARLIER, NOW).value == "CONFIRMED"


def test_payment_rules():
    assert check_can_pay("PENDING", LATER, NOW) is True
    assert check_can_pay("CONFIRMED", EARLIER, NOW) is False
    with pytest.raises(HoldExpired):
        check_can_pay("PENDING", NOW, NOW)
    with pytest.raises(HoldExpired):
        check_can_pay("EXPIRED", LATER, NOW)
    with pytest.raises(InvalidState):
        check_can_pay("CANCELLED", LATER, NOW)


def test_cancel_rules():
    assert check_can_cancel("PENDING", LATER, NOW) is True
    assert check_can_cancel("CANCELLED", LATER, NOW) is False
    with pytest.raises(InvalidState):
        check_can_cancel("CONFIRMED", LATER, NOW)
    with pytest.raises(HoldExpired):
        check_can_cancel("PENDING", EARLIER, NOW)


# --- what a seat's status reads -----------------------------------------------------------------

NOW_US = 1_900_000_000_000_000  # a moment in epoch microseconds


def test_a_seat_reads_sold_then_reserved_while_its_hold_is_in_time_else_available():
    assert seat_status(True, None, NOW_US) is SeatStatus.SOLD
    assert seat_status(True, NOW_US + 1, NOW_US) is SeatStatus.SOLD
    assert seat_status(False, NOW_US + 1, NOW_US) is SeatStatus.RESERVED
    assert seat_status(False, NOW_US, NOW_US) is SeatStatus.AVAILABLE  # ends exactly at its time
    assert seat_status(False, NOW_US - 1, NOW_US) is SeatStatus.AVAILABLE
    assert seat_status(False, None, NOW_US) is SeatStatus.AVAILABLE


seat_facts = st.lists(
    st.tuples(st.booleans(), st.one_of(st.none(), st.integers(NOW_US - 10**7, NOW_US + 10**7))),
    max_size=40,
)


@given(seat_facts, st.integers(NOW_US - 10**7, NOW_US + 10**7))
def test_available_seats_are_the_seats_that_read_available(seats, now):
    assert count_available(seats, now) == [
        seat_status(sold, until, now) for sold, until in seats
    ].count(SeatStatus.AVAILABLE)


@given(seat_facts, st.integers(NOW_US - 10**7, NOW_US + 10**7), st.integers(0, 3 * 10**7))
def test_no_status_changes_before_the_next_status_change(seats, now, later):
    changes_at = next_status_change(seats, now)
    moment = now + later
    if changes_at is None or moment < changes_at:
        assert [seat_status(*s, moment) for s in seats] == [seat_status(*s, now) for s in seats]
    else:
        assert [seat_status(*s, changes_at) for s in seats] != [seat_status(*s, now) for s in seats]
