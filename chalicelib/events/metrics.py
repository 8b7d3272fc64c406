"""The outbox's lag as a CloudWatch metric, for the stack's alarm (infra/aws.yaml).

The relay reports the age of the oldest row it has not sent yet, every REPORT_EVERY_S while it
runs, through powertools Metrics: an Embedded Metric Format line in the function's log, which
CloudWatch turns into a metric (no API call, no permission). The alarm treats missing data as
breaching, so a relay that stopped running alarms as well as one that falls behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.db import in_transaction
from chalicelib.log import logger
from chalicelib.settings import get_settings

NAMESPACE = "boxoffice"
OUTBOX_AGE = "OutboxOldestUnsentAgeSeconds"
REPORT_EVERY_S = 10.0

_metrics = Metrics(namespace=NAMESPACE, service="boxoffice")


def oldest_unsent_age_s(conn: psycopg.Connection) -> float:
    """Seconds since the oldest unsent row was written (0 when everything is sent). The first
    unsent id per destination stands for the oldest row: ids follow commit order closely, and
    the partial index (destination, id) WHERE published_at IS NULL answers it in two probes."""
    row = conn.execute(
        """
        SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float AS age
          FROM ((SELECT created_at FROM outbox
                  WHERE published_at IS NULL AND destination = 'events' ORDER BY id LIMIT 1)
                UNION ALL
                (SELECT created_at FROM outbox
                  WHERE published_at IS NULL AND destination = 'expiry' ORDER BY id LIMIT 1)
               ) AS first_unsent
        """
    ).fetchone()
    return max(0.0, row["age"])


def report_outbox_age() -> float:
    age = in_transaction(oldest_unsent_age_s, attempts=1)
    _metrics.set_default_dimensions(stage=get_settings().stage)
    _metrics.add_metric(name=OUTBOX_AGE, unit=MetricUnit.Seconds, value=round(age, 3))
    _metrics.flush_metrics()
    return age


class OutboxAgeReporter:
    """Called on every round of the relay's loop; reports at most once per `every_s`, the first
    time one period after it was made (a relay run lasts about a minute)."""

    def __init__(
        self, every_s: float = REPORT_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._every_s = every_s
        self._clock = clock
        self._next = clock() + every_s

    def __call__(self) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._every_s
        try:
            report_outbox_age()
        except Exception as exc:  # a metric must never stop the relay
            logger.warning("could not report the outbox's age", extra={"error": repr(exc)})
