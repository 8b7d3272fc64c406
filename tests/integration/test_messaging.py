"""infra/boxoffice.yaml and its local provisioning (devtools/provision.py), against a real endpoint:
the queues, the topic, the subscriptions with their filters, dead-lettering and delays.

Each test provisions its own stage, so tests never share queues. The endpoint is the embedded one
on a free port, or TEST_AWS_ENDPOINT_URL when set (e.g. LocalStack from scripts/localstack.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.provision import TEMPLATE, load_template, provision
from tests.support.aws import messages_left, nothing_arrives, publish, receive

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
    outputs: dict[str, str], stage: str, aws_endpoint: str, aws: Callable[[str], Any]
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
    assert provision(stage, endpoint_url=aws_endpoint, region="us-east-1") == outputs
    again = sns.list_subscriptions_by_topic(TopicArn=outputs["TopicArn"])["Subscriptions"]
    assert len(again) == 2


def test_provisioning_again_repairs_what_drifted_from_the_template(
    outputs: dict[str, str], stage: str, aws_endpoint: str, aws: Callable[[str], Any]
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

    provision(stage, endpoint_url=aws_endpoint, region="us-east-1")

    expiry = sqs.get_queue_attributes(
        QueueUrl=outputs["ExpiryQueueUrl"], AttributeNames=["VisibilityTimeout"]
    )
    assert expiry["Attributes"]["VisibilityTimeout"] == "30"
    repaired = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])
    assert repaired["Attributes"]["RawMessageDelivery"] == "true"


def test_instances_provisioning_at_once_agree(aws_endpoint: str, stage: str) -> None:
    results: list[dict[str, str]] = []

    def run() -> None:
        results.append(provision(stage, endpoint_url=aws_endpoint, region="us-east-1"))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 3
    assert results[0] == results[1] == results[2]


def test_payment_confirmed_reaches_notifications_and_analytics_raw(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    sent = publish(aws("sns"), outputs["TopicArn"], "payment.confirmed")

    for queue in ("NotificationsQueueUrl", "AnalyticsQueueUrl"):
        (message,) = receive(sqs, outputs[queue], 1)
        assert json.loads(message["Body"]) == sent  # raw: the body is the message, no envelope
        assert message["MessageAttributes"]["event_type"]["StringValue"] == "payment.confirmed"
        assert nothing_arrives(sqs, outputs[queue])


def test_seats_released_reaches_only_analytics(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    sent = publish(aws("sns"), outputs["TopicArn"], "seats.released")

    (message,) = receive(sqs, outputs["AnalyticsQueueUrl"], 1)
    assert json.loads(message["Body"]) == sent
    assert nothing_arrives(sqs, outputs["NotificationsQueueUrl"])


@pytest.mark.parametrize("event_type", ["reservation.created", "reservation.cancelled"])
def test_created_and_cancelled_reach_no_queue(
    event_type: str, outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    """Published to the topic (a future subscriber can take them), delivered to no queue today.
    A counted event published after it shows the topic delivers: only that one arrives."""
    sqs, sns = aws("sqs"), aws("sns")
    publish(sns, outputs["TopicArn"], event_type)
    marker = publish(sns, outputs["TopicArn"], "seats.released")

    (message,) = receive(sqs, outputs["AnalyticsQueueUrl"], 1)
    assert json.loads(message["Body"]) == marker
    assert nothing_arrives(sqs, outputs["AnalyticsQueueUrl"])
    assert nothing_arrives(sqs, outputs["NotificationsQueueUrl"])


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
        messages = receive(sqs, outputs[queue], count)
        assert nothing_arrives(sqs, outputs[queue])
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

    (dead,) = receive(sqs, dlq, 1)
    assert dead["Body"] == "poison"
    assert messages_left(sqs, queue) == 0


def test_expiry_queue_honours_per_message_delay(
    outputs: dict[str, str], aws: Callable[[str], Any]
) -> None:
    sqs = aws("sqs")
    sent_at = time.monotonic()
    sqs.send_message(QueueUrl=outputs["ExpiryQueueUrl"], MessageBody="expire", DelaySeconds=2)

    assert sqs.receive_message(QueueUrl=outputs["ExpiryQueueUrl"]).get("Messages") is None
    (message,) = receive(sqs, outputs["ExpiryQueueUrl"], 1, seconds=6)
    assert message["Body"] == "expire"
    assert time.monotonic() - sent_at >= 2
