"""boto3 clients for SNS and SQS, made once per process, with short timeouts: the relay keeps its
outbox rows locked while it sends, and a dead endpoint should cost it one short wait per round."""

from __future__ import annotations

import functools
import os
import threading

import boto3
from botocore.config import Config

from chalicelib.settings import get_settings

# One attempt with a 1 s budget: rows that could not be sent stay in the outbox, and the relay's
# next round (after its back-off) is the retry.
_CLIENT_CONFIG = Config(
    connect_timeout=0.5,
    read_timeout=1,
    retries={"max_attempts": 1, "mode": "standard"},
    max_pool_connections=32,
)
_lock = threading.Lock()


def _credentials() -> dict[str, str]:
    # Local endpoints (moto, LocalStack) accept any credentials; give boto3 some if none are set.
    if os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("AWS_ACCESS_KEY_ID"):
        return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return {}


@functools.cache
def client(service: str):
    with _lock:
        return boto3.session.Session().client(
            service,
            region_name=get_settings().aws_region,
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            config=_CLIENT_CONFIG,
            **_credentials(),
        )


@functools.cache
def events_topic_arn() -> str:
    """EVENTS_TOPIC_ARN, or the topic found by name. Never created here: a topic made without
    its subscriptions would take events and deliver them nowhere."""
    explicit = os.environ.get("EVENTS_TOPIC_ARN")
    if explicit:
        return explicit
    suffix = f":{get_settings().events_topic_name}"
    for page in client("sns").get_paginator("list_topics").paginate():
        for topic in page.get("Topics", []):
            if topic["TopicArn"].endswith(suffix):
                return topic["TopicArn"]
    raise LookupError(f"no SNS topic named {get_settings().events_topic_name}")


@functools.cache
def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def reset() -> None:
    """Forget clients and resolved names (tests point the process at a new endpoint)."""
    client.cache_clear()
    events_topic_arn.cache_clear()
    queue_url.cache_clear()
