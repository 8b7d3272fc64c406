"""One function per route. Each parses its input, calls a use case and shapes the answer."""

from __future__ import annotations

from chalice import Response
from chalice.app import Request

from chalicelib.cache import seat_maps
from chalicelib.services import accounts, payments, reports, reservations, sessions
from chalicelib.settings import get_settings
from chalicelib.web import conditional, idempotency, rate_limits, tokens
from chalicelib.web.responses import endpoint, json_response, parse_id
from chalicelib.web.schemas import (
    Credentials,
    HoldRequest,
    SessionCreate,
    SessionPageQuery,
    SignUp,
    parse_model,
    parse_query,
)

# Every use case acting for a signed-in caller gets `signed_in=caller`: it checks, in its own
# transaction, that the token's user still has the token's role and version (401 otherwise).


def _caller(request: Request) -> tokens.Caller:
    return tokens.caller_from_header(request.headers.get("authorization"))


def _caller_with_role(request: Request, role: str) -> tokens.Caller:
    """The caller, if the token names this role; 403 if it names another, unless the token is
    stale (401), which takes a database read on this refusal path only."""
    caller = _caller(request)
    if caller.role != role:
        accounts.check_signed_in_now(caller)
        caller.require(role)
    return caller


@endpoint
def sign_up(request: Request) -> Response:
    rate_limits.check_sign_in(request)
    form = parse_model(SignUp, request.raw_body)
    user, version = accounts.sign_up(email=form.email, password=form.password, name=form.name)
    return json_response(
        {"user": user, "token": tokens.issue(user["id"], user["role"], version)}, 201
    )


@endpoint
def log_in(request: Request) -> Response:
    rate_limits.check_sign_in(request)
    form = parse_model(Credentials, request.raw_body)
    user, version = accounts.authenticate(email=form.email, password=form.password)
    return json_response({"token": tokens.issue(user["id"], user["role"], version)})


@endpoint
def create_session(request: Request) -> Response:
    caller = _caller_with_role(request, "MANAGER")
    form = parse_model(SessionCreate, request.raw_body)
    session = sessions.create_session(
        movie=form.movie,
        room=form.room,
        starts_at=form.starts_at,
        price_cents=form.price_cents,
        rows=form.rows,
        seats_per_row=form.seats_per_row,
        created_by=caller.user_id,
        signed_in=caller,
    )
    return json_response(session, 201)


@endpoint
def list_sessions(request: Request) -> Response:
    query = parse_query(SessionPageQuery, request.query_params)
    return json_response(sessions.list_sessions(limit=query.limit, cursor=query.cursor))


# The two hottest reads come as JSON text already: a warm cache renders it once per change.


@endpoint
def get_session(session_id: str) -> Response:
    return json_response(seat_maps.session_json(parse_id(session_id, "session")))


@endpoint
def seat_map(request: Request, session_id: str) -> Response:
    text, etag = seat_maps.seat_map_with_etag(parse_id(session_id, "session"))
    # no-cache: a cache may keep the map but must ask again (with its ETag) before each use.
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if conditional.not_modified(request.headers.get("if-none-match"), etag):
        return Response(body="", status_code=304, headers=headers)
    return json_response(text, headers=headers)


@endpoint
def session_stats(request: Request, session_id: str) -> Response:
    caller = _caller_with_role(request, "MANAGER")
    return json_response(reports.session_stats(parse_id(session_id, "session"), signed_in=caller))


@endpoint
def hold_seats(request: Request) -> Response:
    caller = _caller_with_role(request, "CUSTOMER")
    form = parse_model(HoldRequest, request.raw_body)

    def hold() -> tuple[int, dict]:
        # Inside: a repeat answered from its Idempotency-Key is not another hold.
        rate_limits.check_holds(caller)
        reservation = reservations.hold_seats(
            customer_id=caller.user_id,
            session_id=str(form.session_id),
            seats=form.seats,
            hold_seconds=get_settings().hold_seconds,
            seats_per_customer=get_settings().seats_per_customer,
            signed_in=caller,
        )
        return 201, reservation

    status, body = idempotency.once(request, caller, "hold", hold)
    return json_response(body, status)


@endpoint
def get_reservation(request: Request, reservation_id: str) -> Response:
    caller = _caller(request)
    return json_response(
        reservations.get_reservation(
            parse_id(reservation_id, "reservation"), caller.user_id, signed_in=caller
        )
    )


@endpoint
def cancel_reservation(request: Request, reservation_id: str) -> Response:
    caller = _caller(request)
    reservation = reservations.cancel_reservation(
        parse_id(reservation_id, "reservation"), caller.user_id, signed_in=caller
    )
    return json_response(reservation)


@endpoint
def pay_reservation(request: Request, reservation_id: str) -> Response:
    caller = _caller(request)
    reservation_id = parse_id(reservation_id, "reservation")

    def pay() -> tuple[int, dict]:
        sale = payments.pay_reservation(reservation_id, caller.user_id, signed_in=caller)
        return 200, sale

    status, body = idempotency.once(request, caller, f"pay:{reservation_id}", pay)
    return json_response(body, status)


@endpoint
def purchases(request: Request) -> Response:
    caller = _caller(request)
    return json_response(payments.purchase_history(caller.user_id, signed_in=caller))


@endpoint
def receipts(request: Request) -> Response:
    caller = _caller(request)
    return json_response(reports.receipts_of(caller.user_id, signed_in=caller))
