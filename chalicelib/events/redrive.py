"""Sends dead-lettered messages back to the queue they came from, once their cause is fixed:

    python -m chalicelib.admin redrive --queue notifications|analytics|expiry [--max N]

A message lands in a dead-letter queue after its queue's maxReceiveCount failed deliveries, for
example during a long database outage; nothing sends it back by itself. This moves them in
batches of ten: receive from the DLQ, send to the source queue, and delete from the DLQ only what
the send accepted. A message whose send failed returns to the DLQ when its visibility timeout
ends, so nothing is lost; a crash between send and delete sends a message twice, which the
consumers shrug off (each records the event ids it handled). The DLQ is the one named by the
source queue's RedrivePolicy. SQS's own StartMessageMoveTask would do this on AWS, but emulators
(moto 5.2.5) do not have it, and this works on both.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.aws import clients
from chalicelib.log import logger
from chalicelib.settings import get_settings

QUEUES = ("notifications", "analytics", "expiry")
SQS_BATCH = 10
WAIT_S = 1  # a long poll: an empty answer then means the DLQ is empty, not a sampled miss
HIDDEN_S = 60  # received but not yet deleted: out of sight for this long


def source_queue_name(queue: str) -> str:
    settings = get_settings()
    return {
        "notifications": settings.notifications_queue_name,
        "analytics": settings.analytics_queue_name,
        "expiry": settings.expiry_queue_name,
    }[queue]


def _sqs() -> Any:
    """A client of its own: the shared one's 1 s read timeout is for the request path, too short
    for a long poll."""
    credentials = {}
    if os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("AWS_ACCESS_KEY_ID"):
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.session.Session().client(
        "sqs",
        region_name=get_settings().aws_region,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        config=Config(read_timeout=WAIT_S + 10, retries={"max_attempts": 3, "mode": "standard"}),
        **credentials,
    )


def redrive(queue: str, most: int | None = None) -> int:
    """Move up to `most` messages (all, if None) from `queue`'s DLQ back to it; how many moved."""
    sqs = _sqs()
    source = clients.queue_url(source_queue_name(queue))
    # The dead-letter queue is the one the source's redrive policy names.
    policy = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])
    arn = json.loads(policy["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
    dead_letters = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
    moved = 0
    while most is None or moved < most:
        wanted = SQS_BATCH if most is None else min(SQS_BATCH, most - moved)
        messages = sqs.receive_message(
            QueueUrl=dead_letters,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=WAIT_S,
            VisibilityTimeout=HIDDEN_S,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        answer = sqs.send_message_batch(
            QueueUrl=source,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": message["Body"],
                    **(
                        {"MessageAttributes": message["MessageAttributes"]}
                        if message.get("MessageAttributes")
                        else {}
                    ),
                }
                for i, message in enumerate(messages)
            ],
        )
        sent = [messages[int(entry["Id"])] for entry in answer.get("Successful", [])]
        if sent:
            sqs.delete_message_batch(
                QueueUrl=dead_letters,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                    for i, message in enumerate(sent)
                ],
            )
        moved += len(sent)
        if answer.get("Failed"):
            logger.error(
                "some dead letters could not be sent back; they stay in the DLQ",
                extra={"queue": queue, "failed": answer["Failed"]},
            )
            break
    logger.info("redrive", extra={"queue": queue, "moved": moved})
    return moved
