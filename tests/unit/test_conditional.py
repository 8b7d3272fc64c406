"""If-None-Match as RFC 9110 reads it, and the seat map's ETag: one per content, whatever path
rendered it."""

from __future__ import annotations

import pytest

from chalicelib.cache.snapshots import Snapshot, Views, render_seat_map, seat_map_etag, to_json
from chalicelib.web.conditional import entity_tags, not_modified

CURRENT = '"3f1c0a"'


@pytest.mark.parametrize(
    "field",
    [
        '"3f1c0a"',
        'W/"3f1c0a"',  # weak comparison: the W/ prefix does not matter for GET
        '"old", "3f1c0a"',
        '"old",W/"3f1c0a" , "other"',
        ' "3f1c0a" ',
        '"old", , "3f1c0a"',  # empty list elements are allowed
        "*",
        " * ",
    ],
)
def test_a_field_naming_the_current_tag_or_star_means_not_modified(field):
    assert not_modified(field, CURRENT)


@pytest.mark.parametrize(
    "field",
    [
        None,
        "",
        '"old"',
        '"3F1C0A"',  # opaque tags compare exactly
        "3f1c0a",  # not quoted: does not parse, so ignored
        '"3f1c0a',
        '"3f1c0a" "old"',  # no comma between them
        'w/"3f1c0a"',  # the weak indicator is case-sensitive
        '"a", *',  # * only on its own
        '"3f1c"0a"',
    ],
)
def test_anything_else_gets_the_full_answer(field):
    assert not not_modified(field, CURRENT)


def test_commas_may_be_part_of_an_opaque_tag():
    assert entity_tags('"a,b", "c"') == ['"a,b"', '"c"']
    assert not_modified('"a,b"', '"a,b"')


def test_a_weak_current_tag_matches_its_strong_twin():
    assert not_modified('"x"', 'W/"x"')


def test_the_etag_is_a_strong_quoted_hash_of_the_exact_json_text():
    snapshot = Snapshot({"id": "s"}, [["A1", "A", 1, False, None], ["A2", "A", 2, True, None]])
    text = to_json(render_seat_map("s", snapshot, 0))
    views = Views.render("s", snapshot, 0)
    assert views.seat_map_etag == seat_map_etag(text)
    assert views.seat_map_etag.startswith('"') and views.seat_map_etag.endswith('"')
    assert "W/" not in views.seat_map_etag
    sold_out = Snapshot({"id": "s"}, [["A1", "A", 1, True, None], ["A2", "A", 2, True, None]])
    assert Views.render("s", sold_out, 0).seat_map_etag != views.seat_map_etag
