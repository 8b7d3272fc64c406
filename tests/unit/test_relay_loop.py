"""The relay function's loop, with its database-and-AWS round replaced by a script: when it
sends again at once, when it polls, when it backs off, and when it stops; and how it groups
expiry rows into delayed messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.events import relay


def drive(monkeypatch: pytest.MonkeyPatch, rounds: list[tuple[int, int] | Exception]):
    """Run the loop over these rounds' outcomes; returns (rows sent, pauses taken)."""
    script = list(rounds)
    pauses: list[float] = []

    def one_round() -> tuple[int, int]:
        outcome = script.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(relay, "relay_batch", one_round)
    sent = relay.run(lambda: bool(script), sleep=pauses.append)
    return sent, pauses


def test_a_full_batch_is_followed_at_once_and_a_short_one_by_a_poll(monkeypatch):
    full = relay.BATCH_ROWS
    sent, pauses = drive(monkeypatch, [(full, full), (full, full), (3, 3), (0, 0)])
    assert sent == 2 * full + 3
    assert pauses == [relay.POLL_S, relay.POLL_S]


def test_failures_back_off_longer_each_time_and_reset_after_a_success(monkeypatch):
    rounds = [(10, 0), (10, 4), RuntimeError("PostgreSQL restarting"), (10, 10), (10, 0)]
    sent, pauses = drive(monkeypatch, rounds)
    assert sent == 14
    assert pauses == [
        relay.BACKOFF_S[0],
        relay.BACKOFF_S[1],
        relay.BACKOFF_S[2],
        relay.POLL_S,
        relay.BACKOFF_S[0],
    ]


def test_backoff_stops_growing_at_its_longest_pause(monkeypatch):
    _, pauses = drive(monkeypatch, [(1, 0)] * (len(relay.BACKOFF_S) + 2))
    assert pauses[-3:] == [relay.BACKOFF_S[-1]] * 3


def test_nothing_runs_once_time_is_up(monkeypatch):
    monkeypatch.setattr(relay, "relay_batch", lambda: pytest.fail("ran after its time"))
    assert relay.run(lambda: False, sleep=lambda s: None) == 0


def test_expiry_rows_due_in_the_same_second_share_a_message():
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)

    def row(row_id: int, seconds: float) -> dict:
        return {"id": row_id, "deliver_at": now + timedelta(seconds=seconds)}

    rows = [row(1, 29.2), row(2, 29.9), row(3, 30.0), row(4, 30.01), row(5, -3), row(6, 5000)]
    rows += [row(100 + i, 12.5) for i in range(relay.HOLDS_PER_EXPIRY_MESSAGE + 1)]
    messages = relay._expiry_messages(rows, now)
    full = list(range(100, 100 + relay.HOLDS_PER_EXPIRY_MESSAGE))
    assert messages == [
        (0, [5]),  # already due: no delay
        (13, full),  # rounded up, never early; at most HOLDS_PER_EXPIRY_MESSAGE a message
        (13, [100 + relay.HOLDS_PER_EXPIRY_MESSAGE]),
        (30, [1, 2, 3]),
        (31, [4]),
        (relay.MAX_SQS_DELAY, [6]),  # SQS's longest delay; the handler reschedules the rest
    ]
