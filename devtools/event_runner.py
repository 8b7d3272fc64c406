"""The local stand-in for Lambda's SQS event source mappings and EventBridge schedules.

`chalice local` serves HTTP only: it never runs `@app.on_sqs_message` or `@app.schedule`
handlers. This runner reads the app's own registry of event sources (`app.event_sources`) and,
for each one, does what AWS would do:

- SQS: long-polls the queue (found by name) with LOCAL_SQS_POLLERS threads (2 unless set), calls
  the handler with the payload Lambda builds (Records with messageId, receiptHandle, body,
  attributes, messageAttributes...). When the
  handler returns, the batch is deleted. When it raises, the messages are left alone: they
  reappear after the queue's visibility timeout and, after its maxReceiveCount, SQS moves them to
  the dead-letter queue, exactly as with Lambda (which retries the whole batch, too).
- Schedules: calls the handler with a "Scheduled Event" at start and every period of its rate()
  expression after that, with a context whose time left follows the function's lambda_timeout in
  .chalice/config.json and drops to 0 when the runner stops.
  LOCAL_SCHEDULE_SECONDS, if set, replaces every period (and makes cron() schedules run too),
  e.g. `LOCAL_SCHEDULE_SECONDS=1` sweeps every second locally where AWS sweeps every minute.
  Without it, cron() schedules are skipped with a warning: only rates are timed locally.

Recovery. An endpoint without persistence (moto, LocalStack) that restarts comes back empty. A
poller that finds its queue gone, or a check every RECOVERY_CHECK_S that finds the topic gone,
provisions infra/boxoffice.yaml again (devtools/provision.py, idempotent); the outbox relay, which
has kept every unsent event, then sends them. The schedules (the relay, the sweep, which publish)
are paused while that runs: provisioning makes the topic before its subscriptions, and an event
published in between would go nowhere. Their contexts report no time left, so a relay loop in
progress returns after its current batch, and none starts until provisioning is done.

Threads check `stop_event` at least every few seconds, so setting it stops the runner promptly.

    python -m devtools.event_runner     # what `make run` starts as its event process
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import ScheduledEventConfig, SQSEventConfig

from devtools.lambda_context import ACCOUNT, LambdaContext
from devtools.stage import function_timeout

log = logging.getLogger("boxoffice.events")
# A stop waits for the long polls in flight, so they are short: 2 s unless asked, never over 5 s.
DEFAULT_WAIT_SECONDS = 2
MAX_WAIT_SECONDS = 5
# Concurrent batches per queue (LOCAL_SQS_POLLERS): Lambda polls a queue with several pollers and
# scales them with the backlog; two keep a burst of expiries from queueing behind one batch.
DEFAULT_POLLERS = 2
RETRY_SECONDS = 1.0  # pause after a failed AWS call (endpoint not up yet, queue not made yet)
RECOVERY_CHECK_S = 2.0  # how often the topic and its subscriptions are checked
RECOVERY_MIN_INTERVAL_S = 2.0  # provisioning again at most this often, whoever asks
PAUSE_WAIT_S = 30.0  # how long provisioning waits for a running relay to return
QUEUE_GONE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
SECONDS_PER_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def _lambda_message_attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": attribute["DataType"],
    }
    if "StringValue" in attribute:
        converted["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:  # boto3 answers bytes; Lambda's JSON carries base64
        converted["binaryValue"] = base64.b64encode(attribute["BinaryValue"]).decode()
    return converted


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The payload Lambda hands an SQS-triggered function, from ReceiveMessage's messages."""
    region = queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: _lambda_message_attribute(attribute)
                    for name, attribute in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def scheduled_event(rule_name: str, region: str) -> dict[str, Any]:
    """The payload EventBridge hands a scheduled function."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule_name}"],
        "detail": {},
    }


def rate_seconds(expression: Any) -> float | None:
    """The period of a rate() schedule (a chalice Rate or its string); None for cron()."""
    text = expression.to_string() if hasattr(expression, "to_string") else str(expression)
    if text.startswith("cron("):
        return None
    match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", text.strip())
    if not match:
        raise ValueError(f"not a schedule expression: {text!r}")
    return int(match.group(1)) * SECONDS_PER_UNIT[match.group(2)]


class _QueueGone(Exception):
    pass


class _Either:
    """Set when either event is: a context's "stop now" for stopping or pausing."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


def _code(error: Exception) -> str:
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


class EventRunner:
    """Runs an app module's SQS and schedule handlers against an AWS endpoint until stopped.

    app_module is the imported `app` module: its `app` attribute is the Chalice application and
    each handler is a module-level function named after `handler_string`'s last part.
    endpoint_url and region default to AWS_ENDPOINT_URL and AWS_DEFAULT_REGION (or us-east-1);
    wait_seconds is each long poll's WaitTimeSeconds, which bounds how long a stop takes; pollers is
    how many threads poll each queue.
    """

    def __init__(
        self,
        app_module: ModuleType,
        *,
        stop_event: threading.Event,
        endpoint_url: str | None = None,
        region: str | None = None,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        pollers: int | None = None,
        recover: Callable[[], Any] | None = None,
        topic_arn: str | None = None,
    ) -> None:
        self.app_module = app_module
        self.stop = stop_event
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.wait_seconds = min(wait_seconds, MAX_WAIT_SECONDS)
        self.pollers = pollers or int(os.environ.get("LOCAL_SQS_POLLERS") or DEFAULT_POLLERS)
        self.stage = os.environ.get("STAGE", "local")
        self.threads: list[threading.Thread] = []
        # Provisions the endpoint again (None: never); with topic_arn, the topic is watched too.
        self.recover = recover
        self.topic_arn = topic_arn
        self._recovery_lock = threading.Lock()
        self._recovered_at = float("-inf")
        self._paused = threading.Event()  # set while provisioning again
        self._schedules = threading.Condition()  # guards _running
        self._running = 0  # schedule handlers in progress
        self._failing: set[str] = set()  # queues whose receives fail (logged once an outage)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Starts one thread per SQS handler and per schedule; their names."""
        sources = list(self.app_module.app.event_sources)
        sqs = self._sqs_client(connections=len(sources) * self.pollers + 2)
        schedule_override = os.environ.get("LOCAL_SCHEDULE_SECONDS")
        for config in sources:
            if isinstance(config, SQSEventConfig):
                for n in range(self.pollers):
                    self._spawn(f"sqs:{config.queue}:{n}", self._consume, config, sqs)
            elif isinstance(config, ScheduledEventConfig):
                period = (
                    float(schedule_override)
                    if schedule_override
                    else rate_seconds(config.schedule_expression)
                )
                if period is None:
                    log.warning(
                        "event runner: %s runs on cron; set LOCAL_SCHEDULE_SECONDS to run it",
                        config.name,
                    )
                    continue
                self._spawn(f"schedule:{config.name}", self._fire, config, period)
            else:
                log.warning("event runner: %s (%s) is not run locally", config.name, type(config))
        if self.recover is not None and self.topic_arn:
            self._spawn("recovery:topic", self._watch_topic)
        log.info("event runner started: %s", ", ".join(t.name for t in self.threads) or "nothing")
        return [t.name for t in self.threads]

    def join(self, timeout: float | None = None) -> None:
        """Waits for the threads after stop_event was set (each at most `timeout` seconds)."""
        for thread in self.threads:
            thread.join(timeout)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _client(self, service: str, connections: int = 10) -> Any:
        credentials = {}
        if self.endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
            credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        config = Config(
            # A long poll holds the connection for wait_seconds; the read must outlast it.
            read_timeout=self.wait_seconds + 10,
            connect_timeout=2,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=connections,
        )
        session = boto3.session.Session(region_name=self.region, **credentials)
        return session.client(service, endpoint_url=self.endpoint_url, config=config)

    def _sqs_client(self, connections: int) -> Any:
        return self._client("sqs", connections)

    # --- recovery --------------------------------------------------------------------------------

    def _recover(self, why: str) -> None:
        """Provision the endpoint again: at most once per RECOVERY_MIN_INTERVAL_S, however many
        threads notice at once."""
        if self.recover is None:
            return
        with self._recovery_lock:
            if time.monotonic() - self._recovered_at < RECOVERY_MIN_INTERVAL_S:
                return
            log.warning("event runner: %s; provisioning the AWS endpoint again", why)
            self._paused.set()
            try:
                with self._schedules:
                    self._schedules.wait_for(lambda: self._running == 0, timeout=PAUSE_WAIT_S)
                self.recover()
                log.info("event runner: the AWS endpoint is provisioned again")
            except Exception as error:  # endpoint still down: the next notice tries again
                log.warning("event runner: provisioning failed: %s", error)
            finally:
                self._paused.clear()
                with self._schedules:
                    self._schedules.notify_all()
            self._recovered_at = time.monotonic()

    def _watch_topic(self) -> None:
        """The relay publishes to the topic, and nothing of this runner would notice it gone: a
        topic without its subscriptions (or no topic at all) is provisioned again."""
        sns = self._client("sns", connections=1)
        while not self.stop.wait(RECOVERY_CHECK_S):
            try:
                answer = sns.list_subscriptions_by_topic(TopicArn=self.topic_arn)
            except ClientError as error:
                self._recover(f"topic {self.topic_arn} is gone ({_code(error)})")
                continue
            except BotoCoreError:
                continue  # the endpoint is not answering; nothing to provision yet
            if not answer.get("Subscriptions"):
                self._recover(f"topic {self.topic_arn} has no subscriptions")

    def _handler(self, config: Any) -> Callable[[dict[str, Any], LambdaContext], Any]:
        return getattr(self.app_module, config.handler_string.rsplit(".", 1)[-1])

    def _context(self, config: Any) -> LambdaContext:
        # Chalice names each function <app>-<stage>-<handler>.
        name = f"{self.app_module.app.app_name}-{self.stage}-{config.name}"
        try:
            timeout = function_timeout(self.stage, config.name)
        except OSError:  # an app without a .chalice/config.json beside this package
            timeout = 60
        return LambdaContext(name, self.region, timeout, _Either(self.stop, self._paused))

    # --- SQS -------------------------------------------------------------------------------------

    def _consume(self, config: SQSEventConfig, sqs: Any) -> None:
        handler = self._handler(config)
        while not self.stop.is_set():
            queue = self._find_queue(config.queue, sqs)
            if queue is None:
                return
            self._consume_from(*queue, config, handler, sqs)

    def _consume_from(
        self, url: str, arn: str, config: SQSEventConfig, handler: Callable[..., Any], sqs: Any
    ) -> None:
        """Until stopped, or until the queue is gone (the caller finds it again)."""
        while not self.stop.is_set():
            try:
                messages = self._receive(sqs, url, config)
            except _QueueGone:
                return
            if not messages:
                continue
            try:
                handler(sqs_event(messages, arn), self._context(config))
            except Exception:
                log.exception(
                    "event runner: %s failed on %d message(s); SQS will deliver them again",
                    config.name,
                    len(messages),
                )
                continue
            self._delete(sqs, url, messages)

    def _find_queue(self, name: str, sqs: Any) -> tuple[str, str] | None:
        """(url, arn) of the named queue, waiting for it to exist; None if stopped first."""
        complained = False
        while not self.stop.is_set():
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                return url, attributes["Attributes"]["QueueArn"]
            except (BotoCoreError, ClientError) as error:
                if not complained:
                    log.warning("event runner: waiting for queue %s: %s", name, error)
                    complained = True
                if _code(error) in QUEUE_GONE:
                    self._recover(f"queue {name} does not exist")
                self.stop.wait(RETRY_SECONDS)
        return None

    def _receive(self, sqs: Any, url: str, config: SQSEventConfig) -> list[dict[str, Any]]:
        try:
            answer = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(config.batch_size, 10),
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except (BotoCoreError, ClientError) as error:
            if _code(error) in QUEUE_GONE:
                self._recover(f"queue {config.queue} is gone")
                raise _QueueGone from error
            if not self.stop.is_set():
                if config.queue not in self._failing:  # once an outage, not once a poll
                    self._failing.add(config.queue)
                    log.warning("event runner: cannot receive from %s: %s", config.queue, error)
                self.stop.wait(RETRY_SECONDS)
            return []
        if config.queue in self._failing:
            self._failing.discard(config.queue)
            log.info("event runner: receiving from %s again", config.queue)
        return answer.get("Messages", [])

    @staticmethod
    def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        try:
            answer = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            log.warning(
                "event runner: could not delete a handled batch (it will return): %s", error
            )
            return
        for failure in answer.get("Failed", []):
            log.warning("event runner: could not delete a handled message: %s", failure)

    # --- schedules -------------------------------------------------------------------------------

    def _fire(self, config: ScheduledEventConfig, period: float) -> None:
        """Runs the handler at start and then once a period; a run that outlasts its period is
        followed at once by the next (one run at a time per function, as with a reserved
        concurrency of 1)."""
        handler = self._handler(config)
        rule = f"{self.app_module.app.app_name}-{self.stage}-{config.name}-event"
        next_run = time.monotonic()
        while not self.stop.wait(max(0.0, next_run - time.monotonic())):
            with self._schedules:
                self._schedules.wait_for(lambda: not self._paused.is_set())
                self._running += 1
            next_run = time.monotonic() + period
            try:
                handler(scheduled_event(rule, self.region), self._context(config))
            except Exception:
                log.exception("event runner: schedule %s failed", config.name)
            finally:
                with self._schedules:
                    self._running -= 1
                    self._schedules.notify_all()


def main() -> None:
    """The event process of `make run`: the app's queue and schedule handlers until SIGTERM or
    SIGINT, against AWS_ENDPOINT_URL, which it keeps provisioned."""
    import signal

    from devtools.provision import provision
    from devtools.stage import apply_stage_defaults

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials..." lines
    stage = os.environ.get("STAGE", "local")
    apply_stage_defaults(stage)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    import app as app_module

    outputs = provision(stage)
    runner = EventRunner(
        app_module,
        stop_event=stop,
        recover=lambda: provision(stage),
        topic_arn=outputs["TopicArn"],
    )
    runner.start()
    while not stop.wait(0.5):
        pass
    runner.join(timeout=10)
    from chalicelib.db import close_pool

    close_pool()


if __name__ == "__main__":
    main()
