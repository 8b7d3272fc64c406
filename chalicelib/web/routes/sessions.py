"""Screenings: create one, list the upcoming ones, read one, its seat map and its counters."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from chalice import Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from chalicelib.cache import seat_maps
from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.seating import MAX_ROWS, MAX_SEATS_PER_ROW, MIN_SEATS_PER_SESSION
from chalicelib.services import reports, sessions, views
from chalicelib.web import conditional
from chalicelib.web.registry import MANAGER, Routes
from chalicelib.web.responses import json_response, parse_id
from chalicelib.web.schemas import Name, Room, Strict, parse_model, parse_query
from chalicelib.web.tokens import Caller

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_CURSOR_LENGTH = 512


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


routes = Routes(__name__, tag="sessions")


@routes.post(
    "/sessions",
    summary="Create a session and all its seats",
    status=201,
    response=views.Session,
    errors=(Forbidden,),
    body=SessionCreate,
    role=MANAGER,
    description="Seats are labelled row letter + number: rows A.., numbers "
    "1..seats_per_row. 400 when there would be fewer than 16 seats or `starts_at` is past.",
)
def create_session(caller: Caller) -> views.Session:
    form = parse_model(SessionCreate, routes.current_request.raw_body)
    return sessions.create_session(
        movie=form.movie,
        room=form.room,
        starts_at=form.starts_at,
        price_cents=form.price_cents,
        rows=form.rows,
        seats_per_row=form.seats_per_row,
        created_by=caller.user_id,
        signed_in=caller,
    )


@routes.get(
    "/sessions",
    summary="Upcoming sessions, soonest first, a page at a time",
    response=views.SessionPage,
    query=SessionPageQuery,
)
def list_sessions() -> views.SessionPage:
    query = parse_query(SessionPageQuery, routes.current_request.query_params)
    return sessions.list_sessions(limit=query.limit, cursor=query.cursor)


# The two hottest reads come as JSON text already: a warm cache renders it once per change.


@routes.get(
    "/sessions/{session_id}",
    summary="One session, with its seats available now",
    response=views.Session,
    errors=(NotFound,),
    path_params=SessionPath,
)
def get_session(session_id: str) -> Response:
    return json_response(seat_maps.session_json(parse_id(session_id, "session")))


@routes.get(
    "/sessions/{session_id}/seats",
    summary="The session's seat map",
    response=views.SeatMap,
    errors=(NotFound,),
    path_params=SessionPath,
    headers=ConditionalHeader,
    etag=True,
    description="A hold whose time has passed shows AVAILABLE even before it is expired. "
    "The answer's `ETag` changes whenever a seat's status does (a lapsed hold too) and is "
    "the same from every instance; send it back as `If-None-Match` to get 304 with no body "
    "while nothing has changed. A warm 304 is answered from the cache alone.",
)
def seat_map(session_id: str) -> Response:
    text, etag = seat_maps.seat_map_with_etag(parse_id(session_id, "session"))
    # no-cache: a cache may keep the map but must ask again (with its ETag) before each use.
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if conditional.not_modified(routes.current_request.headers.get("if-none-match"), etag):
        return Response(body="", status_code=304, headers=headers)
    return json_response(text, headers=headers)


@routes.get(
    "/sessions/{session_id}/stats",
    summary="Sales and expiry counters, kept by the analytics subscriber",
    response=views.SessionStats,
    errors=(Forbidden, NotFound),
    path_params=SessionPath,
    role=MANAGER,
    description="Eventually consistent: counted from the events, not by the request.",
)
def session_stats(session_id: str, caller: Caller) -> views.SessionStats:
    return reports.session_stats(parse_id(session_id, "session"), signed_in=caller)
