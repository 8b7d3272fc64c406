"""An AWS-compatible HTTP endpoint for tests: the embedded endpoint `make run` uses (moto behind
granian, in a process of its own) on a free port, provisioned from infra/ like the local system;
or TEST_AWS_ENDPOINT_URL when set (LocalStack, for make test-localstack)."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3

from chalicelib.aws import clients
from devtools.aws_endpoint import embedded_endpoint
from devtools.provision import provision


@contextlib.contextmanager
def aws_endpoint_url() -> Iterator[str]:
    existing = os.environ.get("TEST_AWS_ENDPOINT_URL")
    if existing:
        yield existing
        return
    with embedded_endpoint() as url:
        yield url


@contextlib.contextmanager
def start_aws_endpoint(stage: str) -> Iterator[str]:
    with aws_endpoint_url() as url:
        os.environ["AWS_ENDPOINT_URL"] = url
        clients.reset()
        os.environ["EVENTS_TOPIC_ARN"] = provision(stage, endpoint_url=url)["TopicArn"]
        try:
            yield url
        finally:
            clients.reset()


def aws_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def publish(sns: Any, topic_arn: str, event_type: str) -> dict[str, Any]:
    body = {"event_type": event_type, "event_id": str(uuid.uuid4())}
    sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps(body),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": event_type}},
    )
    return body


def receive(sqs: Any, url: str, count: int, *, seconds: float = 5) -> list[dict[str, Any]]:
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


def nothing_arrives(sqs: Any, url: str) -> bool:
    return not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")


def messages_left(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_for(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
