"""Seat grids and labels (rows A.., numbers 1..seats_per_row, labels like "A1" and "B12"), and
the status a reader sees of each seat."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

MIN_SEATS_PER_SESSION = 16
MAX_ROWS = 26
MAX_SEATS_PER_ROW = 50
ROW_LETTERS = string.ascii_uppercase

_LABEL = re.compile(r"([A-Z])([1-9][0-9]?)")


@dataclass(frozen=True, order=True)
class SeatLabel:
    row: str
    number: int

    def __str__(self) -> str:
        return f"{self.row}{self.number}"

    @classmethod
    def parse(cls, text: str) -> SeatLabel | None:
        """The label's parts, or None if the text is not a seat label at all."""
        match = _LABEL.fullmatch(text)
        if not match:
            return None
        return cls(match.group(1), int(match.group(2)))


@dataclass(frozen=True)
class SeatGrid:
    rows: int
    seats_per_row: int

    @property
    def total(self) -> int:
        return self.rows * self.seats_per_row

    def problems(self) -> list[str]:
        found = []
        if not 1 <= self.rows <= MAX_ROWS:
            found.append(f"rows must be between 1 and {MAX_ROWS}")
        if not 1 <= self.seats_per_row <= MAX_SEATS_PER_ROW:
            found.append(f"seats_per_row must be between 1 and {MAX_SEATS_PER_ROW}")
        if self.total < MIN_SEATS_PER_SESSION:
            found.append(f"a session needs at least {MIN_SEATS_PER_SESSION} seats")
        return found

    def labels(self) -> list[SeatLabel]:
        """Every seat, row by row, in the order the seat map lists them."""
        return [
            SeatLabel(ROW_LETTERS[r], n)
            for r in range(self.rows)
            for n in range(1, self.seats_per_row + 1)
        ]

    def contains(self, label: str) -> bool:
        parsed = SeatLabel.parse(label)
        return (
            parsed is not None
            and ROW_LETTERS.index(parsed.row) < self.rows
            and parsed.number <= self.seats_per_row
        )

    def unknown(self, labels: list[str]) -> list[str]:
        return [label for label in labels if not self.contains(label)]


def seat_order(label: str) -> tuple[str, int]:
    """Sort key that puts A2 before A10."""
    parsed = SeatLabel.parse(label)
    return (parsed.row, parsed.number) if parsed else (label, 0)


class SeatStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    SOLD = "SOLD"


# A seat's facts as PostgreSQL keeps them: whether it is sold, and until when it is held (a moment
# in epoch microseconds; None if no hold names it).
SeatFacts = tuple[bool, int | None]


def seat_status(sold: bool, held_until: int | None, now: int) -> SeatStatus:
    """The one rule for what a seat's status reads at `now`: a hold counts only while in time, so
    a hold that has run out reads AVAILABLE although nothing was written when it ran out. (The
    hold itself takes a seat under the same condition, in SQL under the seat's row lock:
    services/reservations.take_seats.)"""
    if sold:
        return SeatStatus.SOLD
    if held_until is not None and held_until > now:
        return SeatStatus.RESERVED
    return SeatStatus.AVAILABLE


def count_available(seats: Iterable[SeatFacts], now: int) -> int:
    return sum(1 for sold, until in seats if seat_status(sold, until, now) is SeatStatus.AVAILABLE)


def next_status_change(seats: Iterable[SeatFacts], now: int) -> int | None:
    """When the first hold still in time runs out: until then every status reads the same (unless
    something is written). None if no hold is in time."""
    return min(
        (until for sold, until in seats if seat_status(sold, until, now) is SeatStatus.RESERVED),
        default=None,
    )
