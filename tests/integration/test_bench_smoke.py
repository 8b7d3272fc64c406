"""`python -m bench --quick` (what CI can afford of `make bench`): it runs every scenario, exits 0,
and writes a report with the contract's keys and a clean audit. Its numbers are not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import RUN_ID, admin_connection
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow

CONTRACT_AUDIT = {"seats_sold_twice", "seats_in_two_live_holds", "sales_without_event"}
SCENARIO_KEYS = {"name", "requests_per_s", "p50_ms", "p95_ms", "p99_ms", "counts"}


@pytest.fixture
def bench_database():
    name = f"boxoffice_bench_smoke_{RUN_ID}"
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_bench_quick_run(tmp_path, bench_database):
    # The benchmark provisions endpoints of its own: nothing of this run's may leak into it.
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "EVENTS_TOPIC_ARN")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--database-url",
            bench_database,
            "--redis-prefix",
            f"boxoffice-bench-smoke-{RUN_ID}:",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    (report_path,) = tmp_path.glob("*.json")
    report = json.loads(report_path.read_text())
    assert report_path.with_suffix(".md").exists()

    names = {s["name"] for s in report["scenarios"]}
    assert {
        "limit_distinct_holds",
        "distinct_holds",
        "distinct_holds_with_events",
        "flash_sale",
        "seat_map_reads_warm",
        "seat_map_reads_postgres",
        "expiry_holds",
        "expiry_lag",
        "hot_seat",
        "sequential_get",
        "http_sequential_get",
        "http_holds",
        "http_seat_map_reads",
        "http_flash_sale",
        "http_hot_seat",
    } <= names, names
    for scenario in report["scenarios"]:
        assert set(scenario) >= SCENARIO_KEYS, scenario
        assert scenario["requests_per_s"] > 0 and sum(scenario["counts"].values()) > 0
    assert "distinct_holds_service_over_limit" in report["ratios"]
    assert report["http"]["http_events_done_after_s"] is not None  # the load's events all went
    assert report["targets"]["http_holds_per_s"]["handler_twin"]["scenario"] == "distinct_holds"
    assert set(report["audit"]) >= CONTRACT_AUDIT
    assert set(report["audit"].values()) == {0}, report["audit"]
    assert report["failures"] == []
    flash = next(s for s in report["scenarios"] if s["name"] == "flash_sale")
    assert flash["seats_sold"] + flash["seats_held"] <= 16
    assert set(flash["counts"]) <= {"200", "201", "409"}, flash["counts"]
