"""When a hold is live, what status its reader sees, and which transitions are allowed."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from chalicelib.domain.errors import HoldExpired, InvalidState, ValidationError

MAX_SEATS_PER_HOLD = 10


class ReservationStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


def check_seat_request(seats: list[str]) -> None:
    if not seats:
        raise ValidationError("seats must name at least one seat")
    if len(seats) > MAX_SEATS_PER_HOLD:
        raise ValidationError(f"a hold takes at most {MAX_SEATS_PER_HOLD} seats")
    duplicates = sorted({s for s in seats if seats.count(s) > 1})
    if duplicates:
        raise ValidationError(f"duplicate seats: {', '.join(duplicates)}", seats=duplicates)


def visible_status(status: str, expires_at: datetime, now: datetime) -> ReservationStatus:
    """A PENDING hold past its time reads EXPIRED, whether or not the expiry job has run."""
    if status == ReservationStatus.PENDING and expires_at <= now:
        return ReservationStatus.EXPIRED
    return ReservationStatus(status)


def check_can_pay(status: str, expires_at: datetime, now: datetime) -> bool:
    """True when a sale must be created, False when it already exists (paying twice)."""
    current = visible_status(status, expires_at, now)
    if current is ReservationStatus.CONFIRMED:
        return False
    if current is ReservationStatus.CANCELLED:
        raise InvalidState("the reservation was cancelled and cannot be paid")
    if current is ReservationStatus.EXPIRED:
        raise HoldExpired("the hold has expired; reserve the seats again")
    return True


def check_can_cancel(status: str, expires_at: datetime, now: datetime) -> bool:
    """True when the hold must be cancelled now, False when it already was (cancelling twice)."""
    current = visible_status(status, expires_at, now)
    if current is ReservationStatus.CANCELLED:
        return False
    if current is ReservationStatus.CONFIRMED:
        raise InvalidState("the reservation is paid and cannot be cancelled")
    if current is ReservationStatus.EXPIRED:
        raise HoldExpired("the hold has already expired")
    return True
