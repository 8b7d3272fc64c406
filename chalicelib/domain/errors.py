"""Errors a box-office rule can raise. Each carries the API's machine-readable code and status."""

from __future__ import annotations

from typing import Any, ClassVar


class BoxOfficeError(Exception):
    code: ClassVar[str] = "Error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"Code": self.code, "Message": self.message, **self.details}


class ValidationError(BoxOfficeError):
    code, status = "ValidationError", 400


class Forbidden(BoxOfficeError):
    code, status = "Forbidden", 403


class NotFound(BoxOfficeError):
    code, status = "NotFound", 404


class Conflict(BoxOfficeError):
    code, status = "Conflict", 409


class SeatUnavailable(BoxOfficeError):
    code, status = "SeatUnavailable", 409

    def __init__(self, seats: list[str]) -> None:
        subject = f"seats {', '.join(seats)} are" if len(seats) > 1 else f"seat {seats[0]} is"
        super().__init__(f"{subject} not available", seats=seats)


class InvalidState(BoxOfficeError):
    code, status = "InvalidState", 409


class BadCredentials(BoxOfficeError):
    """A sign-in with a wrong password or an unknown email (one answer for both)."""

    code, status = "Unauthorized", 401

    def __init__(self) -> None:
        super().__init__("email or password is wrong")


class StaleToken(BoxOfficeError):
    """A signed token whose user is gone, or whose role or token version is no longer the
    user's (a password or role change bumps the version)."""

    code, status = "Unauthorized", 401

    def __init__(self) -> None:
        super().__init__(
            "this token is no longer valid (its user changed or is gone); log in again"
        )


class HoldLimitReached(BoxOfficeError):
    """The hold would give the customer more than SEATS_PER_CUSTOMER seats of the session."""

    code, status = "HoldLimitReached", 409

    def __init__(self, limit: int, held_seats: int) -> None:
        super().__init__(
            f"you hold or own {held_seats} seats of this session; a customer may have at most "
            f"{limit}",
            limit=limit,
            held_seats=held_seats,
        )


class HoldExpired(BoxOfficeError):
    code, status = "HoldExpired", 410
