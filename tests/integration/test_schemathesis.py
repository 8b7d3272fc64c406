"""schemathesis against the HTTP server `make run` runs (granian's workers serving the app through
devtools/edge.py, in processes of their own) and the document it serves at /openapi.json.

Every operation, with a bearer token of the role it needs, in positive and negative mode (data
that fits the document and data that does not), with every check schemathesis has (not a 5xx;
status, content type, body schema and headers as documented; invalid data refused and valid data
accepted; protected operations refuse a request without a token; 405 with Allow for other
methods; a created resource can be read; ...), each exception stated in `_config` with its
reason. Then the stateful phase: sequences of calls that follow the links schemathesis infers
from the document (a session created, held, paid, cancelled, read), under the same checks.

BOXOFFICE_SCHEMATHESIS_EXAMPLES sets the examples per operation and mode (default 300, as in CI;
the stateful phase plays a third as many scenarios); BOXOFFICE_SCHEMATHESIS_SEED repeats a run.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from schemathesis.core.failures import FailureGroup

from tests.support.data import session_body
from tests.support.live_server import serve_in_process
from tests.support.openapi_check import served_document

# schemathesis' own default for the positive_data_acceptance check.
POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES = [
    "2xx",
    "3xx",
    "401",
    "403",
    "404",
    "409",
    "429",
    "5xx",
]
MAX_EXAMPLES = int(os.environ.get("BOXOFFICE_SCHEMATHESIS_EXAMPLES", "300"))
SEED = os.environ.get("BOXOFFICE_SCHEMATHESIS_SEED")
MANAGER_ONLY = {("POST", "/sessions"), ("GET", "/sessions/{session_id}/stats")}

# Answers per operation and status, printed at the end: shows how deep the run got.
SEEN: collections.Counter = collections.Counter()
# Ids of real things, set by the `world` fixture for the hook below.
WORLD: dict[str, Any] = {}


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    with serve_in_process(workers=2, threads=5) as (url, _):
        yield url


@pytest.fixture
def world(live_url, manager, customer, make_user) -> Iterator[dict[str, Any]]:
    """Real things for generated requests to hit now and then: a session with free seats, and
    the customer's reservations in each state, plus a stranger's (which must read as 404)."""
    http = requests.Session()

    def call(method: str, path: str, token: str, body: Any = None) -> dict:
        answer = http.request(
            method, live_url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code < 300, answer.text
        return answer.json()

    session = call("POST", "/sessions", manager["token"], session_body(rows=10, seats_per_row=10))
    stranger = make_user()

    def hold(who: dict, seats: list[str]) -> str:
        body = {"session_id": session["id"], "seats": seats}
        return call("POST", "/reservations", who["token"], body)["id"]

    pending, paid, cancelled = (
        hold(customer, ["A1"]),
        hold(customer, ["A2"]),
        hold(customer, ["A3"]),
    )
    call("POST", f"/reservations/{paid}/payment", customer["token"])
    call("DELETE", f"/reservations/{cancelled}", customer["token"])
    foreign = hold(stranger, ["A4"])
    labels = [f"{row}{n}" for row in "BCDEFGHIJ" for n in range(1, 11)]
    WORLD.update(
        session_ids=[session["id"]],
        reservation_ids=[pending, paid, cancelled, foreign],
        labels=labels,
    )
    yield WORLD
    WORLD.clear()


def _positive(case: Any) -> bool:
    return case.meta is None or case.meta.generation.mode.is_positive


def _also_accepted(names: list[str], *statuses: str) -> dict[str, Any]:
    expected = [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, *statuses]
    return {
        "include-name": names,
        "checks": {"positive_data_acceptance": {"expected-statuses": expected}},
    }


def _config() -> schemathesis.Config:
    settings: dict[str, Any] = {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
        "phases": {
            "stateful": {"enabled": True},
            # The local server, like API Gateway, knows only the HTTP methods it routes.
            "coverage": {"unexpected-methods": ["put", "patch", "delete", "post", "get"]},
        },
        # Every check runs everywhere. Some answers to data that fits the document are right
        # nonetheless, and the document says when: a 400 where JSON Schema has no words for the
        # rule (a session of fewer than 16 seats, one that has started or is outside 2000-2100;
        # a cursor the server did not issue); a 422 for an Idempotency-Key already used for
        # another request; a 410 for a hold whose time has passed (the world's pending hold
        # lapses during a long run). State, not the data, decides those.
        "operations": [
            _also_accepted(["POST /sessions", "GET /sessions"], "400"),
            _also_accepted(["POST /reservations"], "422"),
            _also_accepted(["POST /reservations/{reservation_id}/payment"], "410", "422"),
            _also_accepted(["DELETE /reservations/{reservation_id}"], "410"),
            # use_after_free expects a DELETE to remove its resource. DELETE of a reservation
            # cancels it, and the contract keeps it readable (status CANCELLED): the check's
            # premise is false for this one read, and only for it.
            {
                "include-name": "GET /reservations/{reservation_id}",
                "checks": {"use_after_free": {"enabled": False}},
            },
        ],
    }
    if SEED:
        settings["seed"] = int(SEED)
    return schemathesis.Config.from_dict(settings)


# The document the app serves; test_served_document_is_what_schemathesis_tests checks that the
# running server's /openapi.json is exactly this. Loaded at import so each operation is its own
# pytest item (schemathesis' fixture-based loader does not work with pytest 9).
schema = schemathesis.openapi.from_dict(served_document(), config=_config())


# Strings that break code which splices text into SQL, format strings or C strings, or that
# PostgreSQL cannot store; random text contains them too rarely to count on. NUL, which PostgreSQL
# refuses in text, is weighted up: with it missing from a model's pattern, this run finds the 500.
# (Lone surrogates, which schemathesis cannot handle itself, are in tests/unit/test_validators.py.)
NASTY = [
    *["\x00"] * 4,
    "'; DROP TABLE users; --",
    "%s",
    "%(id)s",
    "{0}",
    "\\",
    "\u2028",
    "İ",
]


@schema.hook
def before_generate_case(context, strategy):
    """Positive cases sometimes name the real session, seats and reservations, so holds,
    payments and cancellations succeed or fail for real reasons, not only with 404; sometimes
    describe a session the rules JSON Schema cannot state accept too (16 seats or more, in the
    future), so that sequences of calls start from real sessions; and sometimes carry a nasty
    string in one of their text fields."""
    operation = context.operation
    if operation is None:
        return strategy

    def variants(case: Any) -> st.SearchStrategy:
        options = [st.just(case)]
        if _positive(case):
            if WORLD:
                options.append(_with_real_ids(case, operation.path, WORLD))
            if (operation.method.upper(), operation.path) == ("POST", "/sessions"):
                options.append(_a_session_that_is_accepted(case))
            if isinstance(case.body, dict) and any(isinstance(v, str) for v in case.body.values()):
                options += [_with_nasty_text(case)] * (2 * len(options))  # two thirds
        return st.one_of(options)

    return strategy.flatmap(variants)


def _a_session_that_is_accepted(case: Any) -> st.SearchStrategy:
    """The case's session, made big enough (rows B..J of 10 seats, where the hooks' seat labels
    are) and future enough to be created."""
    return st.tuples(st.integers(10, 26), st.integers(10, 50), st.integers(1, 3650)).map(
        lambda chosen: _replace(
            case,
            body={
                **case.body,
                "rows": chosen[0],
                "seats_per_row": chosen[1],
                "starts_at": (datetime.now(UTC) + timedelta(days=chosen[2])).isoformat(),
            },
        )
    )


def _with_nasty_text(case: Any) -> st.SearchStrategy:
    fields = sorted(name for name, value in case.body.items() if isinstance(value, str))

    def spliced(choice: tuple[str, str, int]) -> Any:
        name, nasty, at = choice
        value = case.body[name]
        at = min(at, len(value))
        return _replace(case, body={**case.body, name: value[:at] + nasty + value[at:]})

    return st.tuples(st.sampled_from(fields), st.sampled_from(NASTY), st.integers(0, 8)).map(
        spliced
    )


def _with_real_ids(case: Any, path: str, world: dict[str, Any]) -> st.SearchStrategy:
    if "{reservation_id}" in path:
        return st.sampled_from(world["reservation_ids"]).map(
            lambda rid: _replace(case, path_parameters={"reservation_id": rid})
        )
    if "{session_id}" in path:
        return st.sampled_from(world["session_ids"]).map(
            lambda sid: _replace(case, path_parameters={"session_id": sid})
        )
    if path == "/reservations" and isinstance(case.body, dict):
        return st.tuples(
            st.sampled_from(world["session_ids"]),
            st.lists(st.sampled_from(world["labels"]), min_size=1, max_size=4, unique=True),
        ).map(
            lambda chosen: _replace(
                case, body={**case.body, "session_id": chosen[0], "seats": chosen[1]}
            )
        )
    return st.just(case)


def _replace(case: Any, **changes: Any) -> Any:
    for name, value in changes.items():
        if name == "path_parameters":
            case.path_parameters = {**(case.path_parameters or {}), **value}
        else:
            setattr(case, name, value)
    return case


@pytest.fixture
def headers_for(manager, customer):
    def headers(case: Any) -> dict[str, str]:
        key = (case.operation.method.upper(), case.operation.path)
        token = manager["token"] if key in MANAGER_ONLY else customer["token"]
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    lines = collections.defaultdict(list)
    for (operation, status), count in sorted(SEEN.items()):
        lines[operation].append(f"{status}x{count}")
    print("\nschemathesis answers per operation:")
    for operation, counts in lines.items():
        print(f"  {operation}: {' '.join(counts)}")


def test_served_document_is_what_schemathesis_tests(live_url):
    answer = requests.get(f"{live_url}/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == served_document()


@pytest.mark.slow
@schema.parametrize()
# The fixtures are per operation on purpose: one world and one pair of users for all its examples.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_api_conforms_to_its_document(case, live_url, world, headers_for):
    response = case.call_and_validate(base_url=live_url, headers=headers_for(case))
    SEEN[(f"{case.operation.method.upper()} {case.operation.path}", response.status_code)] += 1


# --- the stateful phase: sequences of calls that follow the document's links ------------------
#
# Links come from schemathesis' dependency analysis of the document (a session's `id` feeds
# GET /sessions/{session_id} and POST /reservations' `session_id`, a reservation's `id` feeds its
# read, cancel and payment, ...). Run the way schemathesis' own engine runs its stateful phase:
# a live server's data changes under the calls, so a replayed prefix of steps cannot draw the same
# way twice (hypothesis' Flaky), which ends a run without meaning a failure; so failed checks are
# collected as they happen rather than raised (and shrunk, which cannot replay either), and runs
# repeat until enough scenarios were played.

Workflow = schema.as_state_machine()
LIVE: dict[str, Any] = {}
SCENARIOS = max(10, MAX_EXAMPLES // 3)


class BoxOfficeWorkflow(Workflow):
    def setup(self) -> None:
        super().setup()
        LIVE["scenarios"] += 1

    def get_call_kwargs(self, case: Any) -> dict[str, Any]:
        return {"base_url": LIVE["url"], "headers": LIVE["headers"](case)}

    def after_call(self, response: Any, case: Any) -> None:
        super().after_call(response, case)
        operation = f"stateful {case.operation.method.upper()} {case.operation.path}"
        SEEN[(operation, response.status_code)] += 1

    def validate_response(self, response: Any, case: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().validate_response(response, case, *args, **kwargs)
        except FailureGroup as failures:
            LIVE["failures"].append(f"{case.operation.label}: {failures}")


@pytest.mark.slow
def test_stateful_sequences_conform(live_url, world, headers_for):
    LIVE.update(url=live_url, headers=headers_for, scenarios=0, failures=[])
    try:
        for _ in range(20):
            # Flaky: the server's data changed what a replayed prefix draws; play on.
            with contextlib.suppress(Flaky):
                BoxOfficeWorkflow.run(
                    settings=settings(
                        max_examples=SCENARIOS,
                        stateful_step_count=10,
                        deadline=None,
                        phases=[Phase.explicit, Phase.reuse, Phase.generate],
                        suppress_health_check=list(HealthCheck),
                        database=None,
                    )
                )
            if LIVE["scenarios"] >= SCENARIOS:
                break
        print(f"\nstateful: {LIVE['scenarios']} scenarios")
        assert LIVE["scenarios"] >= SCENARIOS
        assert not LIVE["failures"], "\n\n".join(dict.fromkeys(LIVE["failures"]))
    finally:
        LIVE.clear()
