"""Refusals that belong to HTTP rather than to a box-office rule: a missing or bad bearer token,
a method the path does not have, an Idempotency-Key still running or used for another request, a
rate limit, a dependency that cannot be reached. Each carries its `Code` and status like the
box-office errors (chalicelib/domain/errors.py), and is answered the same way
(chalicelib/web/responses.py)."""

from __future__ import annotations

from typing import Annotated, NotRequired

from pydantic import Field
from typing_extensions import TypedDict

from chalicelib.domain.errors import BoxOfficeError


class ErrorBody(TypedDict):
    """Every 4xx and 5xx answer (`BoxOfficeError.body()`). Some carry details, such as the seats
    concerned."""

    Code: Annotated[str, Field(description="Machine-readable error code")]
    Message: Annotated[str, Field(description="What went wrong, for a person")]
    seats: NotRequired[
        Annotated[list[str], Field(description="The seats concerned (SeatUnavailable, NotFound)")]
    ]
    limit: NotRequired[
        Annotated[
            int, Field(ge=1, description="HoldLimitReached: the seats a customer may hold and own")
        ]
    ]
    held_seats: NotRequired[
        Annotated[
            int,
            Field(ge=0, description="HoldLimitReached: the seats the customer holds and owns now"),
        ]
    ]


class Unauthorized(BoxOfficeError):
    code, status = "Unauthorized", 401


class MethodNotAllowed(BoxOfficeError):
    code, status = "MethodNotAllowed", 405


class IdempotencyKeyInProgress(BoxOfficeError):
    code, status = "IdempotencyKeyInProgress", 409


class IdempotencyKeyReused(BoxOfficeError):
    code, status = "IdempotencyKeyReused", 422


class RateLimited(BoxOfficeError):
    code, status = "RateLimited", 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limit exceeded; retry in {retry_after} s")
        self.retry_after = retry_after


class ServiceUnavailable(BoxOfficeError):
    code, status = "ServiceUnavailable", 503
