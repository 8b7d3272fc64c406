"""Request and response models. The request models validate every body, query string, path id and
header the API reads; together with the response models they generate the OpenAPI document
(chalicelib/web/openapi.py), so the document and the validation cannot drift apart.

String rules are written as regular expressions that mean the same in pydantic's Rust engine, in
Python's `re` and in JavaScript (ASCII ranges only: no `\\s`, no look-arounds), because the same
pattern validates the request here, is published in the document, and is used by schemathesis and
Swagger UI.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from itertools import accumulate
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.reservations import MAX_SEATS_PER_HOLD, ReservationStatus
from chalicelib.domain.seating import MAX_ROWS, MAX_SEATS_PER_ROW, MIN_SEATS_PER_SESSION, SeatStatus

MAX_BODY_BYTES = 16 * 1024
# Deeper JSON is refused at the edge, before anything parses it (a recursive parser would
# exhaust its stack on a 16 KiB body of "[").
MAX_JSON_DEPTH = 32
DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_CURSOR_LENGTH = 512

# Text that PostgreSQL can store and a person can read: no control characters (NUL would make
# PostgreSQL refuse the row), and no blank at either end (sent as is, never silently trimmed).
_EDGE = r"[^\x00-\x20\x7f]"
_INNER = r"[^\x00-\x1f\x7f]"
TEXT_PATTERN = rf"^{_EDGE}(?:{_INNER}*{_EDGE})?$"
_EMAIL_PART = r"[^@\x00-\x20\x7f]+"
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$"
# Idempotency-Key: 1-255 printable ASCII characters (chalicelib/web/idempotency.py enforces it;
# tests/unit/test_validators.py checks that both agree).
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]+$"
IDEMPOTENCY_KEY_MAX = 255

Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254, pattern=EMAIL_PATTERN),
    Field(examples=["ana@example.com"]),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
Room = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=TEXT_PATTERN)]
SeatLabelText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=8),
    Field(description='Row letter and seat number, e.g. "A1" or "B12"', examples=["A1"]),
]


class Strict(BaseModel):
    """Strict JSON: no type coercion ("5" is not 5, true is not 1), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


# --- request bodies ------------------------------------------------------------------------------


class SignUp(Strict):
    """A new customer account (managers are created from the command line only)."""

    email: Email
    password: str = Field(min_length=8, max_length=128, examples=["s3cret-pass"])
    name: Name = Field(examples=["Ana"])


class Credentials(Strict):
    email: Email
    password: str = Field(min_length=1, max_length=128, examples=["s3cret-pass"])


class SessionCreate(Strict):
    """A screening. `rows` x `seats_per_row` must make at least 16 seats."""

    movie: Name = Field(examples=["Filme X - 19:00"])
    room: Room = Field(examples=["Sala 1"])
    starts_at: AwareDatetime = Field(
        description="ISO-8601 with a time zone, in the future, between the years 2000 and 2100",
        examples=["2099-12-31T19:00:00Z"],
    )
    price_cents: int = Field(ge=0, le=100_000_000, examples=[2500])
    rows: int = Field(ge=1, le=MAX_ROWS, examples=[2])
    seats_per_row: int = Field(ge=1, le=MAX_SEATS_PER_ROW, examples=[8])

    @model_validator(mode="after")
    def enough_seats(self) -> SessionCreate:
        if self.rows * self.seats_per_row < MIN_SEATS_PER_SESSION:
            raise ValueError(f"a session needs at least {MIN_SEATS_PER_SESSION} seats")
        return self

    @field_validator("starts_at")
    @classmethod
    def plausible_year(cls, value: datetime) -> datetime:
        if not 2000 <= value.year <= 2100:
            raise ValueError("starts_at must be between the years 2000 and 2100")
        return value


class HoldRequest(Strict):
    """Seats to hold, all or none. Labels not in the session's grid answer 404."""

    session_id: uuid.UUID
    seats: list[SeatLabelText] = Field(
        min_length=1,
        max_length=MAX_SEATS_PER_HOLD,
        json_schema_extra={"uniqueItems": True},
        examples=[["A1", "A2"]],
    )

    @field_validator("seats")
    @classmethod
    def distinct(cls, seats: list[str]) -> list[str]:
        duplicates = sorted({s for s in seats if seats.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate seats: {', '.join(duplicates)}")
        return seats


# --- query strings, path ids, headers ------------------------------------------------------------


def _ascii_integer(value: Any) -> Any:
    """Query values arrive as text: accept plain ASCII digits only (not "²", "٣", " 5", "1e3" or
    a 5000-digit number, which int() would reject or accept surprisingly)."""
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,9}", value):
            raise ValueError("must be a whole number written with the digits 0-9")
        return int(value)
    return value


class SessionPageQuery(BaseModel):
    """GET /sessions query string. Unknown parameters are refused (400), like unknown fields."""

    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, BeforeValidator(_ascii_integer)] = Field(
        DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="Page size"
    )
    cursor: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="The previous page's `next_cursor`",
    )


class SessionPath(BaseModel):
    session_id: uuid.UUID = Field(description="The session's id; any other text answers 404")


class ReservationPath(BaseModel):
    reservation_id: uuid.UUID = Field(
        description="The reservation's id; any other text, or another customer's, answers 404"
    )


SwaggerAsset = Literal["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"]


class DocsAssetPath(BaseModel):
    asset: SwaggerAsset = Field(description="A file of the packaged Swagger UI")


PageAsset = Literal["app.css", "app.js", "icon.svg"]


class PageAssetPath(BaseModel):
    asset: PageAsset = Field(description="A file of the seat-map page")


class IdempotencyHeader(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str | None = Field(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=(
            "Optional, 1-255 printable ASCII characters. A repeat with the same key by the same "
            "user returns the first answer (status and body) for 24 h; the same key with a "
            "different request answers 422, and while the first is still running, 409. Kept "
            "answers: successes, 409 SeatUnavailable, InvalidState and HoldLimitReached, 410 "
            "HoldExpired; after any other answer the key is free for a retry. A user has at most "
            "1000 live keys; beyond that a key is not kept (the request runs as without one)."
        ),
    )


class ConditionalHeader(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    if_none_match: str | None = Field(
        None,
        alias="If-None-Match",
        description=(
            "The ETag of the seat map the client already has (or a list of them, or `*`). While "
            "no seat's status has changed since, the answer is 304 with no body."
        ),
        examples=['"5d41402abc4b2a76b9719d911017c592"'],
    )


# --- responses -----------------------------------------------------------------------------------


class Out(BaseModel):
    """A response body: exactly these fields."""

    model_config = ConfigDict(extra="forbid")


Cents = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Labels = Annotated[list[str], Field(min_length=1, max_length=MAX_SEATS_PER_HOLD)]


class User(Out):
    id: uuid.UUID
    email: str
    name: str
    role: Literal["CUSTOMER", "MANAGER"]


class SignedUp(Out):
    user: User
    token: str = Field(description="A bearer JWT")


class LoggedIn(Out):
    token: str = Field(description="A bearer JWT")


class Session(Out):
    id: uuid.UUID
    movie: str
    room: str
    starts_at: datetime
    price_cents: Cents
    total_seats: int = Field(ge=MIN_SEATS_PER_SESSION, le=MAX_ROWS * MAX_SEATS_PER_ROW)
    available_seats: Count = Field(description="Seats neither in a live hold nor sold")


class SessionPage(Out):
    items: list[Session] = Field(description="Sessions that have not started, soonest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last"
    )


class Seat(Out):
    label: str
    row: str = Field(pattern=r"^[A-Z]$")
    number: int = Field(ge=1, le=MAX_SEATS_PER_ROW)
    status: SeatStatus


class SeatMap(Out):
    session_id: uuid.UUID
    seats: list[Seat]


class Reservation(Out):
    id: uuid.UUID
    session_id: uuid.UUID
    seats: Labels
    status: ReservationStatus = Field(description="A PENDING hold past its time reads EXPIRED")
    expires_at: datetime
    amount_cents: Cents


class Sale(Out):
    id: uuid.UUID
    reservation_id: uuid.UUID
    session_id: uuid.UUID
    seats: Labels
    amount_cents: Cents
    paid_at: datetime


class Purchase(Out):
    id: uuid.UUID
    reservation_id: uuid.UUID
    movie: str
    room: str
    starts_at: datetime
    seats: Labels
    amount_cents: Cents
    paid_at: datetime


class PurchaseList(Out):
    items: list[Purchase]


class Receipt(Out):
    id: uuid.UUID
    sale_id: uuid.UUID
    reservation_id: uuid.UUID
    amount_cents: Cents
    sent_at: datetime


class ReceiptList(Out):
    items: list[Receipt]


class SessionStats(Out):
    session_id: uuid.UUID
    sold_seats: Count
    revenue_cents: Cents
    expired_reservations: Count
    released_seats: Count


CheckOutcome = Literal["ok", "unavailable"]


class HealthChecks(Out):
    """Each dependency's check: "ok" or "unavailable" (the reason goes to the log, never here)."""

    postgres: CheckOutcome = Field(description="A connection from the pool runs SELECT 1")
    redis: CheckOutcome = Field(description="PING; seats still sell without Redis")
    aws: CheckOutcome = Field(
        description="The expiry queue's URL from SQS; the answer is reused for 5 s"
    )


class Health(Out):
    status: Literal["ok", "degraded"] = Field(
        description="degraded: Redis or the AWS endpoint is down; seats still sell"
    )
    checks: HealthChecks


class HealthUnavailable(Out):
    status: Literal["unavailable"]
    checks: HealthChecks
    Code: Literal["ServiceUnavailable"]
    Message: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer. Some carry details, such as the seats concerned."""

    model_config = ConfigDict(extra="allow")

    Code: str = Field(description="Machine-readable error code")
    Message: str = Field(description="What went wrong, for a person")
    seats: list[str] = Field(
        default_factory=list, description="The seats concerned (SeatUnavailable, NotFound)"
    )
    limit: int | None = Field(
        None, ge=1, description="HoldLimitReached: the seats a customer may hold and own"
    )
    held_seats: int | None = Field(
        None, ge=0, description="HoldLimitReached: the seats the customer holds and owns now"
    )


# --- parsing -------------------------------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)


def _describe(error: PydanticValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


# A JSON string, escapes included: in valid JSON, the only place a quote or a backslash can be.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_DEPTH_CHANGE = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _DEPTH_CHANGE[_open], _DEPTH_CHANGE[_close] = 1, -1


def nesting_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit`: one linear pass over its
    brackets outside strings, without parsing it (and without a Python loop: under a millisecond
    for a 16 KiB body of brackets). Invalid JSON may be reported either way; it is refused
    either way."""
    if b"[" not in raw and b"{" not in raw:
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_CHANGE.__getitem__, brackets)), default=0) > limit


def parse_model(model: type[Model], raw: bytes | str | None) -> Model:
    """A JSON request body, validated by its model; anything wrong is a 400 ValidationError."""
    if raw is None or raw == b"" or raw == "":
        raise ValidationError("a JSON request body is required")
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc)) from None


def parse_query(model: type[Model], params: Mapping[str, str] | None) -> Model:
    """A query string (one value per name; the last wins when repeated), validated by its model."""
    values = {name: params.get(name) for name in (params or {})}
    try:
        return model.model_validate(values)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc)) from None
