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
    second = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)

    def row(row_id: int, seconds: float) -> dict:
        return {"id": row_id, "deliver_at": second + timedelta(seconds=seconds)}

    rows = [row(1, -0.8), row(2, -0.1), row(3, 0), row(4, 0.01), row(5, -30)]
    rows += [row(100 + i, 12.5) for i in range(relay.HOLDS_PER_EXPIRY_MESSAGE + 1)]
    full = list(range(100, 100 + relay.HOLDS_PER_EXPIRY_MESSAGE))
    assert relay._expiry_messages(rows) == [
        (second - timedelta(seconds=30), [5]),
        (second - timedelta(seconds=1), [1, 2]),  # due within the second that starts there
        (second, [3, 4]),
        (second + timedelta(seconds=12), full),  # at most HOLDS_PER_EXPIRY_MESSAGE a message
        (second + timedelta(seconds=12), [100 + relay.HOLDS_PER_EXPIRY_MESSAGE]),
    ]


def test_expiry_delays_are_whole_seconds_never_early_at_most_sqs_limit():
    second = datetime(2026, 11, 23, 12, 0, 30, tzinfo=UTC)
    assert relay.delay_until(second, second - timedelta(seconds=29.2)) == 30
    assert relay.delay_until(second, second - timedelta(seconds=29)) == 29
    assert relay.delay_until(second, second + timedelta(seconds=3)) == 0  # already due
    assert relay.delay_until(second, second - timedelta(hours=1)) == relay.MAX_SQS_DELAY


def test_a_round_with_many_due_seconds_sends_at_most_ten_messages_a_call(monkeypatch):
    """SendMessageBatch takes at most 10 entries: 25 different due seconds make 3 calls."""
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    batches: list[int] = []

    class FakeSQS:
        def send_message_batch(self, QueueUrl, Entries):
            assert len(Entries) <= 10
            batches.append(len(Entries))
            return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    monkeypatch.setattr(relay.clients, "client", lambda service: FakeSQS())
    monkeypatch.setattr(relay.clients, "queue_url", lambda name: "queue")
    rows = [
        {
            "id": i,
            "destination": "expiry",
            "deliver_at": now + timedelta(seconds=i),
            "body": {"reservation_id": f"r{i}"},
            "now": now,
        }
        for i in range(1, 26)
    ]
    sent, parked, failures = relay._send(rows)
    assert failures == [] and parked == {} and sorted(sent) == list(range(1, 26))
    assert sorted(batches) == [5, 10, 10]


def event_rows(count: int) -> list[dict]:
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    return [
        {"id": i, "destination": "events", "event_type": "t", "body": {}, "now": now}
        for i in range(1, count + 1)
    ]


def fake_sns(monkeypatch, answer, failed=lambda ids: []):
    """SNS whose PublishBatch answers `answer(entry ids)`: a list of successful ids or raises;
    `failed(entry ids)` lists its Failed entries."""
    from botocore.exceptions import EndpointConnectionError

    calls: list[list[int]] = []

    class FakeSNS:
        def publish_batch(self, TopicArn, PublishBatchRequestEntries):
            ids = [int(e["Id"]) for e in PublishBatchRequestEntries]
            calls.append(ids)
            went = answer(ids)
            if went is None:
                raise EndpointConnectionError(endpoint_url="http://aws.invalid")
            return {"Successful": [{"Id": str(i)} for i in went], "Failed": failed(ids)}

    monkeypatch.setattr(relay.clients, "client", lambda service: FakeSNS())
    monkeypatch.setattr(relay.clients, "events_topic_arn", lambda: "topic")
    return calls


def test_events_leave_in_order_and_stop_at_a_failed_call(monkeypatch):
    calls = fake_sns(monkeypatch, lambda ids: None if ids[0] == 11 else ids)
    sent, parked, failures = relay._send(event_rows(25))
    assert calls == [list(range(1, 11)), list(range(11, 21))]  # the third chunk never left
    assert sent == list(range(1, 11)) and parked == {} and len(failures) == 1


def test_events_stop_at_an_entry_sns_refused(monkeypatch):
    calls = fake_sns(monkeypatch, lambda ids: [i for i in ids if i != 4])
    sent, parked, failures = relay._send(event_rows(25))
    assert calls == [list(range(1, 11))]
    assert sent == [1, 2, 3] and parked == {} and failures == []


def test_every_round_gives_the_outbox_age_reporter_its_turn(monkeypatch):
    turns: list[int] = []
    monkeypatch.setattr(relay.metrics, "OutboxAgeReporter", lambda: lambda: turns.append(1))
    drive(monkeypatch, [(3, 3), (0, 0), (1, 0)])
    assert len(turns) == 3


def failure(entry_id: int, code: str, sender_fault: bool = True) -> dict:
    return {"Id": str(entry_id), "Code": code, "Message": "why", "SenderFault": sender_fault}


@pytest.mark.parametrize(
    ("entry", "for_good"),
    [
        (failure(1, "InvalidParameter"), True),
        (failure(1, "InvalidParameterValue"), True),
        (failure(1, "InvalidMessageContents"), True),
        (failure(1, "InvalidParameter", sender_fault=False), False),
        (failure(1, "Throttling"), False),
        (failure(1, "KMSAccessDenied"), False),  # fixable, and it stops every row alike
        (failure(1, "InternalError", sender_fault=False), False),
    ],
)
def test_only_the_senders_own_invalid_messages_are_refused_for_good(entry, for_good):
    assert relay.refused_for_good(entry) is for_good


def test_an_entry_refused_for_good_is_parked_and_the_rest_go_on_in_order(monkeypatch):
    calls = fake_sns(
        monkeypatch,
        lambda ids: [i for i in ids if i not in (4, 15)],
        lambda ids: [failure(4, "InvalidParameter")] if 4 in ids else [],
    )
    sent, parked, failures = relay._send(event_rows(25))
    assert calls == [list(range(1, 11)), list(range(11, 21))]
    assert parked == {4: "InvalidParameter: why"}
    # 15 was not refused for good: the run stops there, and 16.. wait for the next round.
    assert sent == [1, 2, 3, *range(5, 15)] and failures == []


def test_a_throttled_entry_is_not_parked(monkeypatch):
    fake_sns(
        monkeypatch,
        lambda ids: [i for i in ids if i != 2],
        lambda ids: [failure(2, "Throttling")] if 2 in ids else [],
    )
    sent, parked, _ = relay._send(event_rows(5))
    assert sent == [1] and parked == {}


def test_an_expiry_message_refused_for_good_parks_every_row_it_carried(monkeypatch):
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)

    class FakeSQS:
        def send_message_batch(self, QueueUrl, Entries):
            first = Entries[0]["Id"]  # the message of the rows due at +1 s
            return {
                "Successful": [{"Id": e["Id"]} for e in Entries[1:]],
                "Failed": [failure(int(first), "InvalidParameterValue")],
            }

    monkeypatch.setattr(relay.clients, "client", lambda service: FakeSQS())
    monkeypatch.setattr(relay.clients, "queue_url", lambda name: "queue")
    rows = [
        {
            "id": i,
            "destination": "expiry",
            "deliver_at": now + timedelta(seconds=1 if i <= 2 else 5),
            "body": {"reservation_id": f"r{i}"},
            "now": now,
        }
        for i in range(1, 5)
    ]
    sent, parked, failures = relay._send(rows)
    assert sorted(sent) == [3, 4] and failures == []
    assert parked == {1: "InvalidParameterValue: why", 2: "InvalidParameterValue: why"}


def test_publish_batches_stay_within_snss_size_limit_and_a_message_too_large_is_refused():
    """SNS takes at most 256 KiB in one PublishBatch, all messages together (AWS refuses a larger
    batch whole): batches are cut by size as well as by count, and a single message over the
    limit is refused for good without being sent."""
    rows = [
        {"id": 1, "event_type": "a", "body": {"x": "y" * 100_000}},
        {"id": 2, "event_type": "a", "body": {"x": "y" * 100_000}},
        {"id": 3, "event_type": "a", "body": {"x": "y" * 100_000}},
        {"id": 4, "event_type": "a", "body": {"x": "y" * 300_000}},
        *({"id": n, "event_type": "a", "body": {}} for n in range(5, 17)),
    ]
    plan = list(relay._publish_plan(rows))

    batches = [[int(e["Id"]) for e in step] for step in plan if isinstance(step, list)]
    refused = [step for step in plan if isinstance(step, tuple)]
    assert batches == [[1, 2], [3, 5, 6, 7, 8, 9, 10, 11, 12, 13], [14, 15, 16]]
    assert [row_id for row_id, _ in refused] == [4]
    assert refused[0][1].startswith("MessageTooLong")
    for step in plan:
        if isinstance(step, list):
            assert sum(relay._entry_bytes(e) for e in step) <= relay.SNS_MAX_BYTES
