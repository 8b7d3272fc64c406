"""infra/boxoffice.yaml, its provisioning, and the local event runner, against a real endpoint.

Each test provisions its own stage, so tests never share queues. The endpoint is a moto server
on a free port, or TEST_AWS_ENDPOINT_URL when set (e.g. LocalStack from scripts/localstack.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice import Chalice, Rate

from chalicelib.aws.embedded import (
    answers_as_aws,
    free_port,
    moto_endpoint,
    start_embedded_endpoint,
)
from chalicelib.aws.provision import TEMPLATE, load_template, provision
from chalicelib.local.event_runner import EventRunner, rate_seconds

# moto's CloudFormation warns that it skips subscriptions and queue policies; provision() copes.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

EVENT_TYPES_FOR_ANALYTICS = {"payment.confirmed", "reservation.expired", "seats.released"}
OUTPUTS = {
    "TopicArn",
    "ExpiryQueueUrl",
    "ExpiryDeadLetterQueueUrl",
    "NotificationsQueueUrl",
    "NotificationsDeadLetterQueueUrl",
    "AnalyticsQueueUrl",
    "AnalyticsDeadLetterQueueUrl",
}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    existing = os.environ.get("TEST_AWS_ENDPOINT_URL")
    if existing:
        yield existing
        return
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def stage() -> str:
    return f"infra-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def aws(endpoint: str) -> Callable[[str], Any]:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


@pytest.fixture
def outputs(endpoint: str, stage: str) -> dict[str, str]:
    return provision(stage, endpoint_url=endpoint, region="us-east-1")


def _publish(sns: Any, topic_arn: str, event_type: str) -> dict[str, Any]:
    body = {"event_type": event_type, "event_id": str(uuid.uuid4())}
    sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps(body),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": event_type}},
    )
    return body


def _receive(sqs: Any, url: str, count: int, *, seconds: float = 5) -> list[dict[str, Any]]:
    """The first `count` messages to arrive on url within `seconds`, deleted as read."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while len(got) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for message in answer.get("Messages", []):
            got.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got


def _nothing_arrives(sqs: Any, url: str) -> bool:
    return not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")


def _messages_left(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- the template --------------------------------------------------------------------------------


def test_template_lints() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    command = str(cfn_lint) if cfn_lint.exists() else shutil.which("cfn-lint")
    assert command, "cfn-lint is not installed (requirements-dev.txt)"
    result = subprocess.run(
        [command, str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_reads_short_form_intrinsics(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    short.write_text(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n"
        "      QueueName: !Sub boxoffice-${Stage}-q\n"
        "Outputs:\n  Url: {Value: !Ref Q}\n  Arn: {Value: !GetAtt Q.Arn}\n"
    )
    template = load_template(short)
    assert template["Resources"]["Q"]["Properties"]["QueueName"] == {
        "Fn::Sub": "boxoffice-${Stage}-q"
    }
    assert template["Outputs"]["Url"]["Value"] == {"Ref": "Q"}
    assert template["Outputs"]["Arn"]["Value"] == {"Fn::GetAtt": ["Q", "Arn"]}


# --- provisioning --------------------------------------------------------------------------------


def test_provisioning_creates_everything(
    outputs: dict[str, str], stage: str, endpoint: str, aws: Callable[[str], Any]
) -> None:
    sqs, sns = aws("sqs"), aws("sns")
    assert set(outputs) == OUTPUTS
    assert outputs["TopicArn"].endswith(f":boxoffice-{stage}-events")

    def attributes(output: str) -> dict[str, str]:
        return sqs.get_queue_attributes(QueueUrl=outputs[output], AttributeNames=["All"])[
            "Attributes"
        ]

    for queue in ("Expiry", "Notifications", "Analytics"):
        main, dead = attributes(f"{queue}QueueUrl"), attributes(f"{queue}DeadLetterQueueUrl")
        assert main["QueueArn"].endswith(f":boxoffice-{stage}-{queue.lower()}")
        assert dead["QueueArn"].endswith(f":boxoffice-{stage}-{queue.lower()}-dlq")
        redrive = json.loads(main["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dead["QueueArn"]
        assert int(redrive["maxReceiveCount"]) == 5
        assert dead["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    assert attributes("ExpiryQueueUrl")["VisibilityTimeout"] == "30"

    subscriptions = {
        s["Endpoint"].rsplit(":", 1)[-1]: sns.get_subscription_attributes(
            SubscriptionArn=s["SubscriptionArn"]
        )["Attributes"]
        for s in sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])["Subscriptions"]
    }
    assert set(subscriptions) == {
        f"boxoffice-{stage}-notifications",
        f"boxoffice-{stage}-analytics",
    }
    for queue, event_types in (
        ("notifications", {"payment.confirmed"}),
        ("analytics", EVENT_TYPES_FOR_ANALYTICS),
    ):
        subscription = subscriptions[f"boxoffice-{stage}-{queue}"]
        assert subscription["RawMessageDelivery"] == "true"
        assert set(json.loads(subscription["FilterPolicy"])["event_type"]) == event_types
        policy = json.loads(attributes(f"{queue.capitalize()}QueueUrl")["Policy"])
        (statement,) = policy["Statement"]
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == outputs["TopicArn"]

    # Idempotent: a second run (another `make run`) finds everything and duplicates nothing.
    assert provision(stage, endpoint_url=endpoint, region="us-east-1") == outputs
    again = sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])["Subscriptions"]
    assert len(again) == 2


def test_provisioning_again_repairs_what_drifted_from_the_template(
    outputs: dict[str, str], stage: str, endpoint: str, aws: Callable[[str], Any]
) -> None:
    sqs, sns = aws("sqs"), aws("sns")
    sqs.set_queue_attributes(
        QueueUrl=outputs["ExpiryQueueUrl"], Attributes={"VisibilityTimeout": "99"}
    )
    (subscription,) = [
        s
        for s in sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])["Subscriptions"]
        if s["Endpoint"].endswith("-notifications")
    ]
    sns.set_subscription_attributes(
        SubscriptionArn=subscription["SubscriptionArn"],
        AttributeName="RawMessageDelivery",
        AttributeValue="false",
    )

    provision(stage, endpoint_url=endpoint, region="us-east-1")

    expiry = sqs.get_queue_attributes(
        QueueUrl=outputs["ExpiryQueueUrl"], AttributeNames=["VisibilityTimeout"]
    )
    assert expiry["Attributes"]["VisibilityTimeout"] == "30"
    repaired = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
    assert repaired["Attributes"]["RawMessageDelivery"] == "true"


def test_instances_provisioning_at_once_agree(endpoint: str, stage: str) -> None:
    results: list[dict[str, str]] = []

    def run() -> None:
        results.append(provision(stage, endpoint_url=endpoint, region="us-east-1"))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 3
    assert results[0] == results[1] == results[2]


def test_stack_is_recorded_in_cloudformation(
    outputs: dict[str, str], stage: str, aws: Callable[[str], Any]
) -> None:
    (stack,) = aws("cloudformation").describe_stacks(StackName=f"boxoffice-{stage}")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} == OUTPUTS


def test_payment_confirmed_reaches_notifications_and_analytics_raw(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    sent = _publish(aws("sns"), outputs["TopicArn"], "payment.confirmed")

    for queue in ("NotificationsQueueUrl", "AnalyticsQueueUrl"):
        (message,) = _receive(sqs, outputs[queue], 1)
        assert json.loads(message["Body"]) == sent  # raw: the body is the message, no envelope
        assert message["MessageAttributes"]["event_type"]["StringValue"] == "payment.confirmed"
        assert _nothing_arrives(sqs, outputs[queue])


def test_seats_released_reaches_only_analytics(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    sent = _publish(aws("sns"), outputs["TopicArn"], "seats.released")

    (message,) = _receive(sqs, outputs["AnalyticsQueueUrl"], 1)
    assert json.loads(message["Body"]) == sent
    assert _nothing_arrives(sqs, outputs["NotificationsQueueUrl"])


@pytest.mark.parametrize("event_type", ["reservation.created", "reservation.cancelled"])
def test_created_and_cancelled_reach_no_queue(
    event_type: str, outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    """Published to the topic (a future subscriber can take them), delivered to no queue today.
    A counted event published after it shows the topic delivers: only that one arrives."""
    sqs, sns = aws("sqs"), aws("sns")
    _publish(sns, outputs["TopicArn"], event_type)
    marker = _publish(sns, outputs["TopicArn"], "seats.released")

    (message,) = _receive(sqs, outputs["AnalyticsQueueUrl"], 1)
    assert json.loads(message["Body"]) == marker
    assert _nothing_arrives(sqs, outputs["AnalyticsQueueUrl"])
    assert _nothing_arrives(sqs, outputs["NotificationsQueueUrl"])


def test_batch_publish_is_filtered_per_message(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    """The outbox relay publishes in batches; each entry is filtered on its own attribute."""
    sqs = aws("sqs")
    event_types = ["reservation.created", "payment.confirmed", "seats.released", "other.event"]
    aws("sns").publish_batch(
        TopicArn=outputs["TopicArn"],
        PublishBatchRequestEntries=[
            {
                "Id": str(i),
                "Message": json.dumps({"event_type": event_type}),
                "MessageAttributes": {
                    "event_type": {"DataType": "String", "StringValue": event_type}
                },
            }
            for i, event_type in enumerate(event_types)
        ],
    )

    def received(queue: str, count: int) -> list[str]:
        messages = _receive(sqs, outputs[queue], count)
        assert _nothing_arrives(sqs, outputs[queue])
        return sorted(json.loads(m["Body"])["event_type"] for m in messages)

    assert received("AnalyticsQueueUrl", 2) == ["payment.confirmed", "seats.released"]
    assert received("NotificationsQueueUrl", 1) == ["payment.confirmed"]


def test_message_received_more_than_max_receive_count_lands_in_dlq(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    queue, dlq = outputs["NotificationsQueueUrl"], outputs["NotificationsDeadLetterQueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="poison")

    receives = 0
    for _ in range(10):
        answer = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, WaitTimeSeconds=1)
        if not answer.get("Messages"):
            break
        receives += 1  # never deleted: as if the consumer failed every time
    assert receives == 5  # maxReceiveCount

    (dead,) = _receive(sqs, dlq, 1)
    assert dead["Body"] == "poison"
    assert _messages_left(sqs, queue) == 0


def test_expiry_queue_honours_per_message_delay(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=outputs["ExpiryQueueUrl"], MessageBody="expire", DelaySeconds=2)

    assert sqs.receive_message(QueueUrl=outputs["ExpiryQueueUrl"]).get("Messages") is None
    (message,) = _receive(sqs, outputs["ExpiryQueueUrl"], 1, seconds=6)
    assert message["Body"] == "expire"
    assert time.monotonic() - sent_at >= 2


# --- the embedded endpoint -----------------------------------------------------------------------


def test_embedded_endpoint_starts_moto_or_reuses_what_answers() -> None:
    port = free_port()
    url, server = start_embedded_endpoint("127.0.0.1", port)
    try:
        assert server is not None
        assert answers_as_aws(url)
        assert start_embedded_endpoint("127.0.0.1", port) == (url, None)  # a second `make run`
    finally:
        server.stop()
    assert not answers_as_aws(url)


# --- the event runner ----------------------------------------------------------------------------


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
def run_events(endpoint: str) -> Iterator[Callable[[FakeApp], EventRunner]]:
    stop = threading.Event()
    runners: list[EventRunner] = []

    def start(fake: FakeApp) -> EventRunner:
        runner = EventRunner(
            fake.module, stop_event=stop, endpoint_url=endpoint, region="us-east-1", wait_seconds=1
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
    assert _wait_for(lambda: _messages_left(sqs, url) == 0)


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

    assert _wait_for(lambda: len(fake.calls) >= 2, seconds=15)
    first, second = (event["Records"][0] for event, _ in fake.calls[:2])
    assert first["messageId"] == second["messageId"]
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert second["attributes"]["ApproximateReceiveCount"] == "2"
    assert _messages_left(sqs, url) == 1


def test_event_runner_fires_schedules_and_stops_promptly(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_SCHEDULE_SECONDS", "0.2")
    fake = FakeApp("boxoffice-no-such-queue")
    stop = threading.Event()
    runner = EventRunner(fake.module, stop_event=stop, endpoint_url=endpoint, wait_seconds=1)

    assert sorted(runner.start()) == [
        "schedule:sweep",
        "sqs:boxoffice-no-such-queue:0",
        "sqs:boxoffice-no-such-queue:1",
    ]
    assert _wait_for(lambda: len(fake.schedule_calls) >= 2, seconds=5)
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
    endpoint: str, monkeypatch: pytest.MonkeyPatch
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
    runner = EventRunner(module, stop_event=stop, endpoint_url=endpoint, wait_seconds=1)
    runner.start()

    assert _wait_for(lambda: len(runs) == 1, seconds=2), "the first run starts with the runner"
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
