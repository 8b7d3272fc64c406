"""Holds: take seats, read and cancel a hold, pay for it."""

from __future__ import annotations

import uuid

from chalice import Response
from pydantic import BaseModel, Field, field_validator

from chalicelib.domain.errors import (
    Forbidden,
    HoldExpired,
    HoldLimitReached,
    InvalidState,
    NotFound,
    SeatUnavailable,
)
from chalicelib.domain.reservations import MAX_SEATS_PER_HOLD
from chalicelib.services import payments, reservations, views
from chalicelib.settings import get_settings
from chalicelib.web import idempotency, rate_limits
from chalicelib.web.errors import IdempotencyKeyInProgress, IdempotencyKeyReused
from chalicelib.web.idempotency import IdempotencyHeader
from chalicelib.web.registry import CUSTOMER, SIGNED_IN, Routes
from chalicelib.web.responses import json_response, parse_id
from chalicelib.web.schemas import SeatLabelText, Strict, parse_model
from chalicelib.web.tokens import Caller


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


class ReservationPath(BaseModel):
    reservation_id: uuid.UUID = Field(
        description="The reservation's id; any other text, or another customer's, answers 404"
    )


routes = Routes(__name__, tag="reservations")


@routes.post(
    "/reservations",
    summary="Hold 1-10 seats of a session, all or none",
    status=201,
    response=views.Reservation,
    errors=(
        Forbidden,
        NotFound,
        SeatUnavailable,
        InvalidState,
        HoldLimitReached,
        IdempotencyKeyInProgress,
        IdempotencyKeyReused,
    ),
    body=HoldRequest,
    headers=IdempotencyHeader,
    role=CUSTOMER,
    description="404 for an unknown session or seat label; 409 `SeatUnavailable` (the body's "
    "`seats` names them), `InvalidState` (the session has started) or `HoldLimitReached` "
    "(the customer would hold and own more than SEATS_PER_CUSTOMER seats of the session).",
)
def hold_seats(caller: Caller) -> Response:
    request = routes.current_request
    form = parse_model(HoldRequest, request.raw_body)

    def hold() -> tuple[int, views.Reservation]:
        # Inside: a repeat answered from its Idempotency-Key is not another hold.
        rate_limits.check_holds(caller)
        return 201, reservations.hold_seats(
            customer_id=caller.user_id,
            session_id=str(form.session_id),
            seats=form.seats,
            hold_seconds=get_settings().hold_seconds,
            seats_per_customer=get_settings().seats_per_customer,
            signed_in=caller,
        )

    status, body = idempotency.once(request, caller, "hold", hold)
    return json_response(body, status)


@routes.get(
    "/reservations/{reservation_id}",
    summary="One of the caller's reservations",
    response=views.Reservation,
    errors=(NotFound,),
    path_params=ReservationPath,
    role=SIGNED_IN,
    description="Another customer's reservation answers 404.",
)
def get_reservation(reservation_id: str, caller: Caller) -> views.Reservation:
    return reservations.get_reservation(
        parse_id(reservation_id, "reservation"), caller.user_id, signed_in=caller
    )


@routes.delete(
    "/reservations/{reservation_id}",
    summary="Cancel a hold; its seats are free at once",
    response=views.Reservation,
    errors=(NotFound, InvalidState, HoldExpired),
    path_params=ReservationPath,
    role=SIGNED_IN,
    description="Cancelling again answers the same 200. 409 `InvalidState` when it is paid; "
    "410 `HoldExpired` when its time has passed.",
)
def cancel_reservation(reservation_id: str, caller: Caller) -> views.Reservation:
    return reservations.cancel_reservation(
        parse_id(reservation_id, "reservation"), caller.user_id, signed_in=caller
    )


@routes.post(
    "/reservations/{reservation_id}/payment",
    summary="Pay a hold: its seats become SOLD",
    response=views.Sale,
    errors=(
        NotFound,
        InvalidState,
        IdempotencyKeyInProgress,
        HoldExpired,
        IdempotencyKeyReused,
    ),
    path_params=ReservationPath,
    headers=IdempotencyHeader,
    role=SIGNED_IN,
    description="Paying again returns the same sale. 409 `InvalidState` when it was "
    "cancelled; 410 `HoldExpired` when its time has passed. No request body.",
)
def pay_reservation(reservation_id: str, caller: Caller) -> Response:
    reservation_id = parse_id(reservation_id, "reservation")

    def pay() -> tuple[int, views.Sale]:
        return 200, payments.pay_reservation(reservation_id, caller.user_id, signed_in=caller)

    status, body = idempotency.once(routes.current_request, caller, f"pay:{reservation_id}", pay)
    return json_response(body, status)
