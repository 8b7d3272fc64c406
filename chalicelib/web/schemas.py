"""Request models. They validate every body and also generate the OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from chalicelib.domain.errors import ValidationError
from chalicelib.domain.reservations import MAX_SEATS_PER_HOLD
from chalicelib.domain.seating import MAX_ROWS, MAX_SEATS_PER_ROW, MIN_SEATS_PER_SESSION

MAX_BODY_BYTES = 16 * 1024

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
SeatLabelText = Annotated[str, StringConstraints(min_length=1, max_length=8)]


class Strict(BaseModel):
    """Strict JSON: no type coercion ("5" is not 5, true is not 1), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


class SignUp(Strict):
    email: Email
    password: str = Field(min_length=8, max_length=128)
    name: Text


class Credentials(Strict):
    email: Email
    password: str = Field(min_length=1, max_length=128)


class SessionCreate(Strict):
    movie: Text
    room: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    starts_at: AwareDatetime = Field(description="ISO-8601 with a time zone, in the future")
    price_cents: int = Field(ge=0, le=100_000_000)
    rows: int = Field(ge=1, le=MAX_ROWS)
    seats_per_row: int = Field(ge=1, le=MAX_SEATS_PER_ROW)

    @model_validator(mode="after")
    def enough_seats(self) -> SessionCreate:
        if self.rows * self.seats_per_row < MIN_SEATS_PER_SESSION:
            raise ValueError(f"a session needs at least {MIN_SEATS_PER_SESSION} seats")
        return self

    @field_validator("starts_at")
    @classmethod
    def plausible_year(cls, value):
        if not 2000 <= value.year <= 2100:
            raise ValueError("starts_at must be between the years 2000 and 2100")
        return value


class HoldRequest(Strict):
    session_id: uuid.UUID
    seats: list[SeatLabelText] = Field(min_length=1, max_length=MAX_SEATS_PER_HOLD)

    @field_validator("seats")
    @classmethod
    def distinct(cls, seats: list[str]) -> list[str]:
        duplicates = sorted({s for s in seats if seats.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate seats: {', '.join(duplicates)}")
        return seats


Model = TypeVar("Model", bound=BaseModel)


def _describe(error: PydanticValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_model(model: type[Model], raw: bytes | str | None) -> Model:
    if raw is None or raw == b"" or raw == "":
        raise ValidationError("a JSON request body is required")
    if len(raw) > MAX_BODY_BYTES:
        raise ValidationError(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc)) from None
