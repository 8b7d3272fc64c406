"""The report of `make bench`: the targets, each HTTP one beside its handler-level twin, and the
Markdown page written next to the JSON."""

from __future__ import annotations

import json
from typing import Any

# name: (comparison, target). Handler-level targets first, then the HTTP block's.
TARGETS: dict[str, tuple[str, float]] = {
    "distinct_holds_service_over_limit": (">=", 0.5),
    "flash_sale_hold_p99_ms": ("<", 50.0),
    "seat_map_warm_over_postgres": (">=", 10.0),
    "expiry_lag_p99_ms": ("<", 2000.0),
    "http_sequential_get_p50_ms": ("<", 5.0),
    "http_holds_per_s": (">=", 250.0),
    "http_holds_over_service": (">=", 0.6),
    "http_seat_map_reads_per_s": (">=", 1500.0),
    "http_flash_sale_hold_p99_ms": ("<=", 200.0),
    "http_hot_seat_hold_p99_ms": ("<=", 120.0),
    "http_events_done_after_s": ("<=", 10.0),
}

# An HTTP target's twin: the same measure of the handler-level scenario (scenario, kind, field).
TWINS: dict[str, tuple[str, str | None, str]] = {
    "http_sequential_get_p50_ms": ("sequential_get", "get", "p50_ms"),
    "http_holds_per_s": ("distinct_holds", "hold", "per_s"),
    "http_seat_map_reads_per_s": ("seat_map_reads_warm", "read", "per_s"),
    "http_flash_sale_hold_p99_ms": ("flash_sale", "hold", "p99_ms"),
    "http_hot_seat_hold_p99_ms": ("hot_seat", "hold", "p99_ms"),
    "http_events_done_after_s": ("distinct_holds_with_events", None, "outbox_drained_after_s"),
}


def _measure(scenario: dict[str, Any], kind: str | None, field: str) -> Any:
    return scenario[field] if kind is None else scenario["by_kind"].get(kind, {}).get(field)


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_name = {s["name"]: s for s in report["scenarios"]}
    values = {**report["ratios"], **report.get("http", {})}
    if "flash_sale" in by_name:
        values["flash_sale_hold_p99_ms"] = by_name["flash_sale"]["by_kind"]["hold"]["p99_ms"]
    if "expiry_lag" in by_name:
        lag = by_name["expiry_lag"]
        values["expiry_lag_p99_ms"] = lag["p99_ms"] if not lag["not_expired"] else None
    if "http_holds_per_s" in values and "distinct_holds" in by_name:
        service = by_name["distinct_holds"]["by_kind"]["hold"]["per_s"]
        values["http_holds_over_service"] = round(values["http_holds_per_s"] / service, 3)
    found = {}
    for name, (op, target) in TARGETS.items():
        if name not in values:
            continue
        value = values[name]
        met = (
            value is not None
            and {
                ">=": value >= target,
                "<": value < target,
                "<=": value <= target,
            }[op]
        )
        line = {"value": value, "target": f"{op} {target}", "met": met}
        if name in TWINS and TWINS[name][0] in by_name:
            scenario, kind, field = TWINS[name]
            line["handler_twin"] = {
                "scenario": scenario,
                "value": _measure(by_name[scenario], kind, field),
            }
        found[name] = line
    return found


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# boxoffice benchmark, {report['started_at']}",
        "",
        f"{env['cores']} cores, P = {env['processes']} worker processes, {env['python']}, "
        f"{env['postgres']}, Redis {env['redis']}. Sizes: `{json.dumps(report['sizes'])}`.",
        "",
        "| scenario | requests/s | p50 ms | p95 ms | p99 ms | counts | vs limit |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for s in report["scenarios"]:
        counts = ", ".join(f"{k}: {v}" for k, v in s["counts"].items())
        ratio = s.get("requests_per_s_over_limit", "")
        lines.append(
            f"| {s['name']} | {s['requests_per_s']} | {s['p50_ms']} | {s['p95_ms']} | "
            f"{s['p99_ms']} | {counts} | {ratio} |"
        )
    lines += ["", "Per request kind:", ""]
    lines += ["| scenario | kind | per s | p50 ms | p95 ms | p99 ms | counts |"]
    lines += ["|---|---|---:|---:|---:|---:|---|"]
    for s in report["scenarios"]:
        for kind, k in s["by_kind"].items():
            counts = ", ".join(f"{c}: {v}" for c, v in k["counts"].items())
            lines.append(
                f"| {s['name']} | {kind} | {k['per_s']} | {k['p50_ms']} | {k['p95_ms']} | "
                f"{k['p99_ms']} | {counts} |"
            )
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    lines += ["", "| target | value | wanted | met | handler-level twin |"]
    lines += ["|---|---:|---|---|---|"]
    for k, t in report["targets"].items():
        twin = t.get("handler_twin")
        twin_text = f"{twin['scenario']}: {twin['value']}" if twin else ""
        met = "yes" if t["met"] else "NO"
        lines.append(f"| {k} | {t['value']} | {t['target']} | {met} | {twin_text} |")
    lines += ["", "Audit (every count must be 0):", "", "| check | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["audit"].items()]
    lines += ["", f"Totals: `{json.dumps(report['totals'])}`"]
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def versions(database_url: str) -> dict[str, str]:
    import psycopg

    from chalicelib.cache import redis_client

    with psycopg.connect(database_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return {"postgres": f"PostgreSQL {pg}", "redis": redis_client().info()["redis_version"]}
