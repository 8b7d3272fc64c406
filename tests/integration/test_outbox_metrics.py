"""The outbox-age metric the relay emits for the stack's alarm: what the query measures, and the
Embedded Metric Format line CloudWatch reads (namespace, dimensions and unit must match the alarm
in infra/aws.yaml, which tests/package checks against the same constants)."""

from __future__ import annotations

import json
import uuid

import pytest

from chalicelib.events import metrics


def _unsent(db, destination: str, seconds_ago: int, published: bool = False) -> None:
    db.execute(
        """
        INSERT INTO outbox (event_id, destination, event_type, aggregate_id, body, created_at,
                            published_at)
        VALUES (%s, %s, 'reservation.created', %s, '{}',
                now() - make_interval(secs => %s), CASE WHEN %s THEN now() END)
        """,
        (str(uuid.uuid4()), destination, str(uuid.uuid4()), seconds_ago, published),
    )


def _emitted(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]


def test_the_oldest_unsent_row_of_either_destination_is_reported(db, capsys):
    _unsent(db, "events", 300, published=True)  # sent: does not count
    _unsent(db, "events", 40)
    _unsent(db, "expiry", 90)
    _unsent(db, "events", 5)

    age = metrics.report_outbox_age()

    assert 90 <= age < 100
    (line,) = _emitted(capsys)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == metrics.NAMESPACE
    assert directive["Metrics"] == [{"Name": metrics.OUTBOX_AGE, "Unit": "Seconds"}]
    assert sorted(directive["Dimensions"][0]) == ["service", "stage"]
    assert line["service"] == "boxoffice" and line["stage"] == "test"
    assert line[metrics.OUTBOX_AGE] == [pytest.approx(age, abs=0.01)]


def test_an_empty_outbox_reports_zero(db, capsys):
    _unsent(db, "events", 60, published=True)
    assert metrics.report_outbox_age() == 0
    assert _emitted(capsys)[0][metrics.OUTBOX_AGE] == [0]


def test_the_reporter_reports_once_per_period_and_survives_a_failure(monkeypatch):
    now = [0.0]
    calls: list[float] = []

    def report() -> float:
        calls.append(now[0])
        if len(calls) == 2:
            raise RuntimeError("PostgreSQL restarting")
        return 0.0

    monkeypatch.setattr(metrics, "report_outbox_age", report)
    reporter = metrics.OutboxAgeReporter(every_s=10, clock=lambda: now[0])
    for t in (0, 5, 9.9, 10, 12, 20, 25, 31):
        now[0] = t
        reporter()
    assert calls == [10, 20, 31]
