"""The Lambda context object handed to the app's handlers when they run outside Lambda."""

from __future__ import annotations

import threading
from typing import Any

from chalice.local import LambdaContext as ChaliceLocalContext

ACCOUNT = "123456789012"  # what ARNs name locally; SQS events carry the queue's real ARN


class LambdaContext(ChaliceLocalContext):
    """chalice.local's context with the fields powertools reads, and a time left that drops to 0
    when `stop` is set: a handler that works until its time is nearly up (the outbox relay)
    returns at once when the process is stopping."""

    def __init__(
        self,
        function_name: str,
        region: str,
        timeout_s: float = 60,
        stop: threading.Event | Any = None,
    ) -> None:
        super().__init__(function_name, memory_size=128, max_runtime_ms=int(timeout_s * 1000))
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._stop = stop

    def get_remaining_time_in_millis(self) -> float:
        if self._stop is not None and self._stop.is_set():
            return 0
        return max(0.0, super().get_remaining_time_in_millis())
