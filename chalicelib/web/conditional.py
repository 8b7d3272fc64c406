"""Conditional GET (RFC 9110, section 13.1.2): `If-None-Match` against a representation's ETag.

The field is either `*` or a comma-separated list of entity tags, each `"opaque"` or `W/"opaque"`.
GET compares them weakly: `W/"x"` matches `"x"`. When one matches (or `*` is sent, and the
resource exists, which it does once a handler has an ETag for it), the answer is 304 with no
body. A field that does not parse is ignored, as if it had not been sent: the client gets the
full answer, never an error for a header it may not control (proxies add and rewrite them).
"""

from __future__ import annotations

import re

# etagc = %x21 / %x23-7E / obs-text: anything visible but a double quote (commas included).
_ENTITY_TAG = re.compile(r'(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")')
_LIST_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")


def _opaque(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


def entity_tags(field: str) -> list[str] | None:
    """The opaque tags (with their quotes) listed in an If-None-Match field, ['*'] for `*`, or
    None if the field does not parse."""
    value = field.strip(" \t")
    if value == "*":
        return ["*"]
    tags: list[str] = []
    position = 0
    while position < len(value):
        separator = _LIST_SEPARATOR.match(value, position)
        if separator:  # empty list elements are allowed ("a, , b") and mean nothing
            position = separator.end()
            continue
        match = _ENTITY_TAG.match(value, position)
        if match is None:
            return None
        tags.append(match.group(1))
        position = match.end()
        if position < len(value) and not _LIST_SEPARATOR.match(value, position):
            return None
    return tags or None


def not_modified(if_none_match: str | None, current_etag: str) -> bool:
    """True when a GET carrying this If-None-Match should be answered 304."""
    if not if_none_match:
        return False
    tags = entity_tags(if_none_match)
    if tags is None:
        return False
    return tags == ["*"] or _opaque(current_etag) in tags
