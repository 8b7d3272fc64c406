"""The local stand-in for Lambda's event sources (devtools/event_runner.py), against a real
endpoint: SQS batches as Lambda hands them, schedules, stopping, and provisioning again after the
endpoint lost everything."""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chalice import Chalice, Rate

from devtools.event_runner import EventRunner, rate_seconds
from devtools.provision import provision
from tests.support.aws import messages_left, wait_for


class FakeApp:
    """An `app` module with one SQS handler and one schedule, recording what they are given."""

    def __init__(self, queue_name: str, *, fail: bool = False) -> None:
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.schedule_calls: list[tuple[dict[str, Any], Any]] = []
        self.called = threading.Event()
        self.module = types.ModuleType("fake_app")
        app = Chalice(app_name="fakeapp")

        @app.on_sqs_message(queue=queue_name, batch_size=5)
        def consume(event):
            self.calls.append((event.to_dict(), event.context))
            self.called.set()
            if fail:
                raise RuntimeError("handler failed")

        @app.schedule(Rate(1, unit=Rate.MINUTES))
        def sweep(event):
            self.schedule_calls.append((event.to_dict(), event.context))

        self.module.app = app
        self.module.consume = consume
        self.module.sweep = sweep


@pytest.fixture
def run_events(aws_endpoint: str) -> Iterator[Callable[[FakeApp], EventRunner]]:
    stop = threading.Event()
    runners: list[EventRunner] = []

    def start(fake: FakeApp) -> EventRunner:
        runner = EventRunner(
            fake.module,
            stop_event=stop,
            endpoint_url=aws_endpoint,
            region="us-east-1",
            wait_seconds=1,
        )
        runner.start()
        runners.append(runner)
        return runner

    yield start
    stop.set()
    for runner in runners:
        runner.join(timeout=5)


def test_event_runner_hands_sqs_handler_a_lambda_event_and_deletes_the_batch(
    outputs: dict[str, str], stage: str, aws: Callable[[str], Any], run_events
) -> None:
    sqs = aws("sqs")
    url = outputs["ExpiryQueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody='{"reservation_id": "r-1"}',
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "hold.expiry"}},
    )
    fake = FakeApp(f"boxoffice-{stage}-expiry")

    run_events(fake)

    assert fake.called.wait(10)
    event, context = fake.calls[0]
    (record,) = event["Records"]
    assert record["messageId"] == sent["MessageId"]
    assert record["body"] == '{"reservation_id": "r-1"}'
    assert record["receiptHandle"]
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["event_type"] == {
        "stringValue": "hold.expiry",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert context.function_name.startswith("fakeapp-") and context.function_name.endswith(
        "-consume"
    )
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert wait_for(lambda: messages_left(sqs, url) == 0)


def test_event_runner_leaves_the_batch_when_the_handler_raises(
    outputs: dict[str, str], stage: str, aws: Callable[[str], Any], run_events
) -> None:
    sqs = aws("sqs")
    url = outputs["ExpiryQueueUrl"]
    # A short visibility timeout so the failed message comes back within the test.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=url, MessageBody="fails")
    fake = FakeApp(f"boxoffice-{stage}-expiry", fail=True)

    run_events(fake)

    assert wait_for(lambda: len(fake.calls) >= 2, seconds=15)
    first, second = (event["Records"][0] for event, _ in fake.calls[:2])
    assert first["messageId"] == second["messageId"]
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert second["attributes"]["ApproximateReceiveCount"] == "2"
    assert messages_left(sqs, url) == 1


def test_event_runner_fires_schedules_and_stops_promptly(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_SCHEDULE_SECONDS", "0.2")
    fake = FakeApp("boxoffice-no-such-queue")
    stop = threading.Event()
    runner = EventRunner(fake.module, stop_event=stop, endpoint_url=aws_endpoint, wait_seconds=1)

    assert sorted(runner.start()) == [
        "schedule:sweep",
        "sqs:boxoffice-no-such-queue:0",
        "sqs:boxoffice-no-such-queue:1",
    ]
    assert wait_for(lambda: len(fake.schedule_calls) >= 2, seconds=5)
    stop.set()
    stopped_at = time.monotonic()
    runner.join(timeout=5)

    assert time.monotonic() - stopped_at < 3
    assert not any(thread.is_alive() for thread in runner.threads)
    event, context = fake.schedule_calls[0]
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"][0].endswith("-sweep-event")
    assert context.function_name.endswith("-sweep")
    assert fake.calls == []  # the queue never existed: its thread waited, then stopped


def test_event_runner_runs_schedules_at_start_and_ends_a_long_run_when_stopped(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function that works until its Lambda time is nearly up (the outbox relay) starts with
    the runner, not a period later, and returns promptly when the runner stops: its context then
    reports no time left."""
    monkeypatch.delenv("LOCAL_SCHEDULE_SECONDS", raising=False)
    module = types.ModuleType("fake_app")
    app = Chalice(app_name="fakeapp")
    runs: list[int] = []
    returned = threading.Event()

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def relay(event):
        runs.append(event.context.get_remaining_time_in_millis())
        while event.context.get_remaining_time_in_millis() > 5_000:
            time.sleep(0.01)
        returned.set()

    module.app, module.relay = app, relay
    stop = threading.Event()
    runner = EventRunner(module, stop_event=stop, endpoint_url=aws_endpoint, wait_seconds=1)
    runner.start()

    assert wait_for(lambda: len(runs) == 1, seconds=2), "the first run starts with the runner"
    assert 55_000 < runs[0] <= 60_000  # Chalice's default lambda_timeout: fakeapp sets none
    assert not returned.wait(0.5)
    stop.set()
    assert returned.wait(2)
    runner.join(timeout=5)
    assert not any(thread.is_alive() for thread in runner.threads)


def test_rate_seconds_reads_chalice_rates_and_strings() -> None:
    assert rate_seconds(Rate(1, unit=Rate.MINUTES)) == 60
    assert rate_seconds("rate(2 hours)") == 7200
    assert rate_seconds("rate(1 day)") == 86400
    assert rate_seconds("cron(0 12 * * ? *)") is None
    with pytest.raises(ValueError):
        rate_seconds("every minute")


def test_event_runner_provisions_again_when_the_endpoint_lost_everything(
    aws_endpoint: str, stage: str, outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    """An emulator without persistence that restarts comes back empty: the runner notices (a
    poller's queue, or the watched topic, is gone), provisions the template again, and goes on
    consuming from the new queue."""
    sqs, sns = aws("sqs"), aws("sns")
    fake = FakeApp(f"boxoffice-{stage}-expiry")
    stop = threading.Event()
    runner = EventRunner(
        fake.module,
        stop_event=stop,
        endpoint_url=aws_endpoint,
        wait_seconds=1,
        recover=lambda: provision(stage, endpoint_url=aws_endpoint),
        topic_arn=outputs["TopicArn"],
    )
    runner.start()
    try:
        for name, url in outputs.items():
            if name.endswith("QueueUrl"):
                sqs.delete_queue(QueueUrl=url)
        sns.delete_topic(TopicArn=outputs["TopicArn"])

        def provisioned_again() -> bool:
            try:
                subscribed = sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])
                sqs.get_queue_url(QueueName=f"boxoffice-{stage}-analytics")
            except Exception:
                return False
            return len(subscribed["Subscriptions"]) == 2

        assert wait_for(provisioned_again, seconds=15)
        url = sqs.get_queue_url(QueueName=f"boxoffice-{stage}-expiry")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="after the restart")
        assert wait_for(
            lambda: any(
                record["body"] == "after the restart"
                for event, _ in fake.calls
                for record in event["Records"]
            ),
            seconds=15,
        )
    finally:
        stop.set()
        runner.join(timeout=5)
