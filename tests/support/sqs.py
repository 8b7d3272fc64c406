"""SQS records as Lambda hands them to the app's queue handlers, for tests that call a handler
directly."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


def sqs_record(body: str, queue: str = "expiry") -> SimpleNamespace:
    return SimpleNamespace(
        body=body,
        receipt_handle=f"handle-{body}",
        to_dict=lambda: {"eventSourceARN": f"arn:aws:sqs:us-east-1:0:{queue}", "messageId": body},
    )


def deliver(handle_batch: Callable[[list[Any]], Any], *bodies: str) -> Any:
    """The messages as one batch, the way the event source mapping delivers them."""
    return handle_batch([sqs_record(body) for body in bodies])
