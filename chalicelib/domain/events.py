"""Domain events: versioned JSON envelopes with an id, a type, a time and a payload."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1

RESERVATION_CREATED = "reservation.created"
RESERVATION_CANCELLED = "reservation.cancelled"
RESERVATION_EXPIRED = "reservation.expired"
SEATS_RELEASED = "seats.released"
PAYMENT_CONFIRMED = "payment.confirmed"

# The command sent to the SQS delay queue: "look at this hold when its time is up".
EXPIRY_DUE = "reservation.expiry_due"


@dataclass(frozen=True)
class Event:
    type: str
    reservation_id: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def envelope(self, occurred_at: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": SCHEMA_VERSION,
            "occurred_at": occurred_at.isoformat(),
            "payload": self.payload,
        }


def seats_released(reservation: dict[str, Any], reason: str) -> Event:
    return Event(
        SEATS_RELEASED,
        str(reservation["id"]),
        {
            "reservation_id": str(reservation["id"]),
            "session_id": str(reservation["session_id"]),
            "seats": list(reservation["seats"]),
            "reason": reason,
        },
    )
