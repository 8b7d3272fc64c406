"""Property tests for what validates input: the request models, the query and header rules, the
seat-label parser, path ids and bearer tokens. Each is compared with a plain-Python statement of
the rule, over inputs Hypothesis makes up, and must never fail with anything but its own error."""

from __future__ import annotations

import json
import re
import string
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import jwt
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from chalicelib.domain.errors import NotFound, ValidationError
from chalicelib.domain.seating import SeatGrid, SeatLabel, seat_order
from chalicelib.settings import get_settings
from chalicelib.web import idempotency, schemas, tokens
from chalicelib.web.errors import Unauthorized
from chalicelib.web.idempotency import IdempotencyHeader
from chalicelib.web.responses import parse_id
from chalicelib.web.routes.accounts import Credentials, SignUp
from chalicelib.web.routes.reservations import HoldRequest
from chalicelib.web.routes.sessions import SessionCreate, SessionPageQuery
from chalicelib.web.schemas import parse_model, parse_query

CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}
# Text with the characters that matter here turning up often: controls, blanks, @, dots, digits.
tricky_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(CONTROL | {" ", "@", ".", "\u00a0", "\u2028", "é", "A", "1"})),
        st.characters(codec="utf-8"),
    ),
    max_size=24,
)


def body(**fields) -> str:
    return json.dumps(fields)


def accepted(model, raw) -> bool:
    try:
        parse_model(model, raw)
    except ValidationError:
        return False
    return True


# --- the seat-label parser -----------------------------------------------------------------------


@given(st.sampled_from(string.ascii_uppercase), st.integers(1, 99))
def test_every_row_letter_and_number_parses_and_prints_back(row, number):
    label = SeatLabel.parse(f"{row}{number}")
    assert label == SeatLabel(row, number)
    assert str(label) == f"{row}{number}"


@given(st.text(max_size=6))
@example("A01")
@example("a1")
@example("A٣")  # an Arabic-Indic digit is a digit to str.isdigit, not to a seat label
@example("A1\n")
@example("AA1")
@example("A100")
def test_label_parser_accepts_exactly_letter_then_1_to_99(text):
    parsed = SeatLabel.parse(text)
    rule = (
        2 <= len(text) <= 3
        and text[0] in string.ascii_uppercase
        and text[1] in "123456789"
        and all(c in string.digits for c in text[2:])
    )
    assert (parsed is not None) == rule
    if parsed is not None:
        assert str(parsed) == text


@given(st.integers(1, 26), st.integers(1, 50), st.lists(st.text(max_size=4), max_size=8))
def test_grid_contains_and_unknown_agree_with_the_rule(rows, per_row, labels):
    grid = SeatGrid(rows, per_row)
    for text in labels:
        parsed = SeatLabel.parse(text)
        inside = (
            parsed is not None
            and string.ascii_uppercase.index(parsed.row) < rows
            and parsed.number <= per_row
        )
        assert grid.contains(text) == inside
    assert grid.unknown(labels) == [text for text in labels if not grid.contains(text)]


@given(st.integers(1, 26), st.integers(1, 50))
def test_grid_lists_every_seat_once_in_seat_order(rows, per_row):
    labels = [str(label) for label in SeatGrid(rows, per_row).labels()]
    assert len(labels) == len(set(labels)) == rows * per_row
    assert sorted(labels, key=seat_order) == labels


@given(st.lists(st.tuples(st.sampled_from("ABCZ"), st.integers(1, 99)), max_size=12))
def test_seat_order_is_row_then_number(seats):
    labels = [f"{row}{number}" for row, number in seats]
    assert sorted(labels, key=seat_order) == [f"{r}{n}" for r, n in sorted(seats)]


# --- text rules: one pattern, the same answer in pydantic, Python and the document ---------------


def text_rule(value: str, low: int, high: int) -> bool:
    return (
        low <= len(value) <= high
        and not any(c in CONTROL for c in value)
        and value[:1] not in (" ", "")
        and value[-1:] != " "
    )


def email_rule(value: str) -> bool:
    local, at, domain = value.partition("@")
    name, dot, tld = domain.rpartition(".")
    plain = all(c not in CONTROL and c not in " @" for c in local + name + tld)
    return 3 <= len(value) <= 254 and bool(at and local and dot and name and tld) and plain


@given(tricky_text)
@example("Ana")
@example(" Ana")
@example("Ana ")
@example("A\x00na")
@example("Ana\u00a0")
@example("")
def test_names_follow_the_text_rule(name):
    ok = accepted(SignUp, body(email="a@b.co", password="password1", name=name))
    assert ok == text_rule(name, 1, 200)
    # The published pattern means the same to Python's re (schemathesis, Hypothesis) as it does
    # to pydantic's engine.
    assert (re.fullmatch(schemas.TEXT_PATTERN, name) is not None) == text_rule(name, 1, 10**6)


@given(tricky_text)
@example("ana@example.com")
@example("ana@example")
@example("a\x00@b.cc")
@example("ana @b.cc")
@example("@b.cc")
@example("a@b.")
@example("a@@b.cc")
def test_emails_follow_the_email_rule(email):
    assert accepted(Credentials, body(email=email, password="x")) == email_rule(email)
    assert (re.fullmatch(schemas.EMAIL_PATTERN, email) is not None) == email_rule(email)


@given(st.text(max_size=140))
def test_signup_passwords_are_8_to_128_characters_of_anything(password):
    ok = accepted(SignUp, body(email="a@b.co", password=password, name="Ana"))
    assert ok == (8 <= len(password) <= 128)


# --- whole bodies ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@pytest.mark.parametrize("model", [SignUp, Credentials, SessionCreate, HoldRequest])
@given(raw=st.one_of(st.binary(max_size=64), json_values.map(json.dumps)))
def test_any_body_is_a_model_or_a_validation_error(model, raw):
    try:
        parse_model(model, raw)
    except ValidationError as exc:
        assert exc.status == 400 and exc.message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "a@b.co", "password": "pass\\ud800word", "name": "Ana"}',  # lone surrogate
        b'{"email": "a@b.co", "password": "password1", "name": "\\udfffAna"}',
        b'{"email": "a@b.co", "password": "password1", "name": "Ana\xff"}',  # not UTF-8
        b'{"email": "a@b.co", "password": "password1", "name": "A\\u0000na"}',  # NUL
        b'{"email": "a@b.co", "password": "password1", "name": "Ana", "name": 1}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_text_postgresql_or_utf_8_cannot_hold_is_refused(raw):
    with pytest.raises(ValidationError):
        parse_model(SignUp, raw)


@pytest.mark.parametrize("model", [SignUp, Credentials, SessionCreate, HoldRequest])
@given(extra=st.text(min_size=1, max_size=10))
def test_unknown_fields_are_refused(model, extra):
    valid = {
        SignUp: {"email": "a@b.co", "password": "password1", "name": "Ana"},
        Credentials: {"email": "a@b.co", "password": "x"},
        SessionCreate: {
            "movie": "M",
            "room": "R",
            "starts_at": "2090-01-01T19:00:00Z",
            "price_cents": 1,
            "rows": 4,
            "seats_per_row": 4,
        },
        HoldRequest: {"session_id": str(uuid.uuid4()), "seats": ["A1"]},
    }[model]
    assume(extra not in valid)
    assert accepted(model, json.dumps(valid))
    assert not accepted(model, json.dumps({**valid, extra: 1}))


@given(
    rows=st.integers(-2, 30),
    per_row=st.integers(-2, 55),
    price=st.one_of(st.integers(-5, 10**9), st.just("2500"), st.just(25.5), st.booleans()),
    days=st.integers(-40_000, 40_000),
    zone=st.sampled_from([UTC, timezone(timedelta(hours=-3)), None]),
)
def test_session_bodies_follow_the_rules(rows, per_row, price, days, zone):
    when = datetime(2030, 6, 1, 19, 0) + timedelta(days=days)
    starts_at = when.replace(tzinfo=zone).isoformat()
    raw = body(movie="M", room="R", starts_at=starts_at, price_cents=price, rows=rows,
               seats_per_row=per_row)  # fmt: skip
    rule = (
        1 <= rows <= 26
        and 1 <= per_row <= 50
        and rows * per_row >= 16
        and type(price) is int
        and 0 <= price <= 100_000_000
        and zone is not None
        and 2000 <= when.year <= 2100
    )
    assert accepted(SessionCreate, raw) == rule


@given(
    seats=st.lists(st.sampled_from(["A1", "A2", "B7", "Z99", "", "x" * 9]), max_size=12),
    session_id=st.one_of(st.uuids().map(str), st.text(max_size=10)),
)
def test_hold_bodies_follow_the_rules(seats, session_id):
    try:
        uuid.UUID(session_id)
        good_id = True
    except ValueError:
        good_id = False
    assume(good_id or not re.fullmatch(r"[0-9a-fA-F]{32}", session_id))
    rule = (
        good_id
        and 1 <= len(seats) <= 10
        and len(set(seats)) == len(seats)
        and all(1 <= len(s) <= 8 for s in seats)
    )
    assert accepted(HoldRequest, body(session_id=session_id, seats=seats)) == rule


# --- query strings, path ids, headers ----------------------------------------------------------


@given(st.one_of(st.text(max_size=12), st.integers(-5, 300).map(str)))
@example("²")
@example("٣")
@example("9" * 5000)
@example(" 5")
@example("+5")
@example("1e2")
def test_page_limit_is_1_to_200_in_ascii_digits(raw):
    rule = re.fullmatch(r"[0-9]{1,9}", raw) is not None and 1 <= int(raw) <= 200
    try:
        query = parse_query(SessionPageQuery, {"limit": raw})
    except ValidationError:
        assert not rule
    else:
        assert rule and query.limit == int(raw)


@given(st.text(max_size=600))
def test_cursor_is_1_to_512_characters(raw):
    try:
        query = parse_query(SessionPageQuery, {"cursor": raw})
    except ValidationError:
        assert not 1 <= len(raw) <= 512
    else:
        assert query.cursor == raw and query.limit == 50


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=4), max_size=3))
def test_unknown_query_parameters_are_refused(params):
    try:
        parse_query(SessionPageQuery, params)
    except ValidationError:
        assert set(params) - {"limit", "cursor"} or params
    else:
        assert set(params) <= {"limit", "cursor"}


@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=300))
@example("")
@example(" ")
@example("k" * 255)
@example("k" * 256)
@example("caf\u00e9")
def test_idempotency_key_model_agrees_with_the_idempotency_module(key):
    class Req:
        headers = {"idempotency-key": key}

    try:
        IdempotencyHeader.model_validate({"Idempotency-Key": key})
        by_model = True
    except Exception:
        by_model = False
    try:
        idempotency.idempotency_key(Req())
        by_module = True
    except ValidationError:
        by_module = False
    assert by_model == by_module == (1 <= len(key) <= 255 and all(" " <= c <= "~" for c in key))


# --- JSON nesting ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=60,
)


def depth_of(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


def nested(levels: int, inner: object = 1):
    for _ in range(levels):
        inner = [inner] if levels % 2 else {"k": inner}
    return inner


@given(st.one_of(json_values, st.integers(0, 40).map(nested)), st.integers(0, 40))
@example(nested(32), 32)
@example(nested(33), 32)
@example({"[[[": '{{{\\"[['}, 1)
def test_nesting_scan_agrees_with_the_parsed_depth(value, limit):
    raw = json.dumps(value).encode()
    assert schemas.nesting_exceeds(raw, limit) == (depth_of(value) > limit)


def test_idempotency_fingerprint_survives_any_depth():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert idempotency.canonical_body(deep) == deep  # compared byte for byte, not a crash
    assert idempotency.fingerprint("POST", "/x", "pay", deep)


@given(st.one_of(st.uuids().map(str), st.text(max_size=40)))
def test_path_ids_are_uuids_or_404(raw):
    try:
        parsed = parse_id(raw, "session")
    except NotFound as exc:
        assert exc.status == 404
    else:
        assert parsed == str(uuid.UUID(raw))


# --- bearer tokens -----------------------------------------------------------------------------


@given(st.uuids(), st.sampled_from(["CUSTOMER", "MANAGER"]))
def test_issued_tokens_verify_to_their_user_and_role(user_id, role):
    caller = tokens.verify(tokens.issue(str(user_id), role, 7))
    assert caller == tokens.Caller(str(user_id), role, 7)


@given(st.text(max_size=200))
@example("a.b.c")
@example("e30.e30.")
def test_any_text_is_a_caller_or_401(token):
    with pytest.raises(Unauthorized):
        tokens.verify(token)


NOW = int(time.time())
# An hour either side of now: far enough that the seconds a test takes change nothing.
times = st.sampled_from([NOW - 3600, NOW + 3600])
claims = st.fixed_dictionaries(
    {},
    optional={
        "sub": st.one_of(st.uuids().map(str), st.integers(), st.none()),
        "role": st.sampled_from(["CUSTOMER", "MANAGER", "ADMIN", 1]),
        "iss": st.sampled_from(["boxoffice", "someone-else", ""]),
        "aud": st.sampled_from(["boxoffice-test", "boxoffice-prod", ["boxoffice-test"], ""]),
        "iat": times,
        "exp": st.one_of(times, st.text(max_size=3)),
        "nbf": times,
        "ver": st.one_of(st.integers(-1, 3), st.booleans(), st.text(max_size=2), st.none()),
    },
)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@given(
    claims,
    st.sampled_from(["none", "HS256-other-key", "HS384", "HS512", "garbled-header"]),
)
def test_unsigned_foreign_or_garbled_tokens_are_401(payload, how):
    secret = get_settings().jwt_secret
    if how == "none":
        token = jwt.encode(payload, None, algorithm="none")
    elif how == "HS256-other-key":
        token = jwt.encode(payload, "another-secret-of-thirty-two-characters!", algorithm="HS256")
    elif how == "garbled-header":
        token = (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6WzEsMl19." + jwt.encode(payload, secret).split(".", 1)[1]
        )
    else:  # the right key with an algorithm the service does not accept
        token = jwt.encode(payload, secret, algorithm=how)
    with pytest.raises(Unauthorized):
        tokens.verify(token)


@given(claims)
@example(
    {"sub": "u", "role": "CUSTOMER", "iss": "boxoffice", "iat": NOW - 3600, "exp": NOW + 3600,
     "ver": 0}
)  # fmt: skip
@example({"sub": "u", "role": "CUSTOMER", "iss": "boxoffice", "iat": NOW - 3600, "exp": NOW + 3600})
def test_signed_tokens_pass_only_with_every_claim_right(payload):
    token = jwt.encode(payload, get_settings().jwt_secret, algorithm="HS256")
    rule = (
        isinstance(payload.get("sub"), str)
        and payload.get("role") in ("CUSTOMER", "MANAGER")
        and payload.get("iss") == "boxoffice"
        and payload.get("aud") in ("boxoffice-test", ["boxoffice-test"])
        and payload.get("iat") == NOW - 3600
        and payload.get("exp") == NOW + 3600
        and payload.get("nbf", NOW - 3600) == NOW - 3600
        and type(payload.get("ver")) is int
        and payload["ver"] >= 0
    )
    try:
        caller = tokens.verify(token)
    except Unauthorized:
        assert not rule
    else:
        assert rule and caller == tokens.Caller(payload["sub"], payload["role"], payload["ver"])
