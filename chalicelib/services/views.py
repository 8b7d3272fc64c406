"""The JSON shapes the API answers with, one TypedDict each.

The functions that render an answer return these (`session_view`, `reservation_view`,
`sale_view`, the seat map in chalicelib/cache/seat_maps.py, ...), and the OpenAPI document
describes each answer from the same type (chalicelib/web/openapi.py): a shape is written once, as
the type of what renders it. At run time a TypedDict is a plain dict, so an answer costs what it
did and its bytes are exactly what `json.dumps` makes of the dict: field order, integers, times
as `datetime.isoformat()` (`+00:00`), and the seat map's text, which its ETag hashes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, WithJsonSchema, with_config
from typing_extensions import TypedDict

from chalicelib.domain.reservations import MAX_SEATS_PER_HOLD, ReservationStatus
from chalicelib.domain.seating import MAX_ROWS, MAX_SEATS_PER_ROW, MIN_SEATS_PER_SESSION, SeatStatus

# A shape has exactly its fields: the document says so (additionalProperties: false), and the
# tests hold every answer to it.
shape = with_config(ConfigDict(extra="forbid"))

# Rendered as text: ids with str(), times with isoformat().
Id = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Cents = Annotated[int, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Labels = Annotated[list[str], Field(min_length=1, max_length=MAX_SEATS_PER_HOLD)]
Role = Literal["CUSTOMER", "MANAGER"]


@shape
class User(TypedDict):
    id: Id
    email: str
    name: str
    role: Role


@shape
class Session(TypedDict):
    id: Id
    movie: str
    room: str
    starts_at: Time
    price_cents: Cents
    total_seats: Annotated[int, Field(ge=MIN_SEATS_PER_SESSION, le=MAX_ROWS * MAX_SEATS_PER_ROW)]
    available_seats: Annotated[
        int, Field(ge=0, description="Seats neither in a live hold nor sold")
    ]


@shape
class SessionPage(TypedDict):
    items: Annotated[
        list[Session], Field(description="Sessions that have not started, soonest first")
    ]
    next_cursor: Annotated[
        str | None, Field(description="Pass as `cursor` for the next page; null on the last")
    ]


@shape
class Seat(TypedDict):
    label: str
    row: Annotated[str, Field(pattern=r"^[A-Z]$")]
    number: Annotated[int, Field(ge=1, le=MAX_SEATS_PER_ROW)]
    status: SeatStatus


@shape
class SeatMap(TypedDict):
    session_id: Id
    seats: list[Seat]


@shape
class Reservation(TypedDict):
    id: Id
    session_id: Id
    seats: Labels
    status: Annotated[
        ReservationStatus, Field(description="A PENDING hold past its time reads EXPIRED")
    ]
    expires_at: Time
    amount_cents: Cents


@shape
class Sale(TypedDict):
    id: Id
    reservation_id: Id
    session_id: Id
    seats: Labels
    amount_cents: Cents
    paid_at: Time


@shape
class Purchase(TypedDict):
    id: Id
    reservation_id: Id
    movie: str
    room: str
    starts_at: Time
    seats: Labels
    amount_cents: Cents
    paid_at: Time


@shape
class PurchaseList(TypedDict):
    items: list[Purchase]


@shape
class Receipt(TypedDict):
    id: Id
    sale_id: Id
    reservation_id: Id
    amount_cents: Cents
    sent_at: Time


@shape
class ReceiptList(TypedDict):
    items: list[Receipt]


@shape
class SessionStats(TypedDict):
    session_id: Id
    sold_seats: Count
    revenue_cents: Cents
    expired_reservations: Count
    released_seats: Count
