"""What every request is held to, and the vocabulary of the request models.

Each route's models (body, query string, path ids, headers) live beside it in
chalicelib/web/routes/; they validate what the route reads and generate its part of the OpenAPI
document (chalicelib/web/openapi.py), so the document and the validation cannot drift apart. Here:
the body size and nesting every request is refused beyond, strict JSON, the text rules, and the
parsing that turns what pydantic says into a 400 `ValidationError`.

String rules are written as regular expressions that mean the same in pydantic's Rust engine, in
Python's `re` and in JavaScript (ASCII ranges only: no `\\s`, no look-arounds), because the same
pattern validates the request here, is published in the document, and is used by schemathesis and
Swagger UI.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Annotated, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic import ValidationError as PydanticValidationError

from chalicelib.domain.errors import ValidationError

MAX_BODY_BYTES = 16 * 1024
# Deeper JSON is refused at the edge, before anything parses it (a recursive parser would
# exhaust its stack on a 16 KiB body of "[").
MAX_JSON_DEPTH = 32

# Text that PostgreSQL can store and a person can read: no control characters (NUL would make
# PostgreSQL refuse the row), and no blank at either end (sent as is, never silently trimmed).
_EDGE = r"[^\x00-\x20\x7f]"
_INNER = r"[^\x00-\x1f\x7f]"
TEXT_PATTERN = rf"^{_EDGE}(?:{_INNER}*{_EDGE})?$"
_EMAIL_PART = r"[^@\x00-\x20\x7f]+"
EMAIL_PATTERN = rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$"

Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254, pattern=EMAIL_PATTERN),
    Field(examples=["ana@example.com"]),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
Room = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=TEXT_PATTERN)]
SeatLabelText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=8),
    Field(description='Row letter and seat number, e.g. "A1" or "B12"', examples=["A1"]),
]


class BodyTooLarge(ValidationError):
    """A body over MAX_BODY_BYTES: refused on every route before anything parses it
    (chalicelib/web/middleware.py), locally before it is even read (devtools/edge.py)."""

    def __init__(self) -> None:
        super().__init__(f"the request body is larger than {MAX_BODY_BYTES} bytes")


class Strict(BaseModel):
    """Strict JSON: no type coercion ("5" is not 5, true is not 1), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=False)


# --- parsing -------------------------------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)


def _describe(error: PydanticValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


# A JSON string, escapes included: in valid JSON, the only place a quote or a backslash can be.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_DEPTH_CHANGE = [0] * 256
for _open, _close in (b"[]", b"{}"):
    _DEPTH_CHANGE[_open], _DEPTH_CHANGE[_close] = 1, -1


def nesting_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than `limit`: one linear pass over its
    brackets outside strings, without parsing it (and without a Python loop: under a millisecond
    for a 16 KiB body of brackets). Invalid JSON may be reported either way; it is refused
    either way."""
    if b"[" not in raw and b"{" not in raw:
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_CHANGE.__getitem__, brackets)), default=0) > limit


def parse_model(model: type[Model], raw: bytes | str | None) -> Model:
    """A JSON request body, validated by its model; anything wrong is a 400 ValidationError."""
    if raw is None or raw == b"" or raw == "":
        raise ValidationError("a JSON request body is required")
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc)) from None


def parse_query(model: type[Model], params: Mapping[str, str] | None) -> Model:
    """A query string (one value per name; the last wins when repeated), validated by its model."""
    values = {name: params.get(name) for name in (params or {})}
    try:
        return model.model_validate(values)
    except PydanticValidationError as exc:
        raise ValidationError(_describe(exc)) from None
