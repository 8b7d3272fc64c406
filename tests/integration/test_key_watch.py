"""Redis's change notices (client tracking) on a real Redis: what voids a stamp, what does not."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib import cache
from chalicelib.cache import watch as watch_module
from chalicelib.cache.watch import KeyWatch
from chalicelib.settings import get_settings


@pytest.fixture
def prefix() -> str:
    return cache.key("watch-test", uuid.uuid4().hex, "")


@pytest.fixture
def watch(prefix: str) -> Iterator[KeyWatch]:
    keys = KeyWatch(lambda: prefix)
    yield keys
    keys.close()


def kill_watch_connections() -> int:
    """As a Redis restart or a network cut would: the server drops every watching connection."""
    r = cache.redis_client()
    ids = [c["id"] for c in r.client_list() if c["name"] == watch_module.CLIENT_NAME]
    for client_id in ids:
        r.client_kill_filter(_id=client_id)
    return len(ids)


def test_a_change_by_another_client_voids_the_stamp_and_nothing_else_does(watch, prefix):
    r = cache.redis_client()
    key, neighbour = f"{prefix}a", f"{prefix}b"
    r.set(key, "1")
    stamp = watch.stamp(key)
    assert stamp is not None
    assert watch.unchanged(key, stamp)

    r.set(neighbour, "1")  # another key under the prefix
    r.set(f"elsewhere:{uuid.uuid4().hex}", "1")  # a key outside it
    r.get(key)  # a read
    assert watch.unchanged(key, stamp)

    r.delete(key)  # what every seat-map write does
    assert not watch.unchanged(key, stamp)
    assert watch.unchanged(key, watch.stamp(key))  # a stamp taken after it holds again


def test_a_key_running_out_of_time_is_a_change(watch, prefix):
    key = f"{prefix}ttl"
    cache.redis_client().set(key, "1", px=50)
    stamp = watch.stamp(key)
    assert watch.unchanged(key, stamp)
    deadline = time.monotonic() + 2
    while watch.unchanged(key, stamp):
        assert time.monotonic() < deadline, "Redis never reported the key's expiry"
        cache.redis_client().exists(key)  # Redis also expires keys lazily, on access
        time.sleep(0.01)


def test_a_change_made_by_this_process_voids_at_once(watch, prefix):
    key = f"{prefix}mine"
    stamp = watch.stamp(key)
    watch.changed_here(key)
    assert not watch.unchanged(key, stamp)


def test_a_lost_connection_voids_every_stamp_and_watching_resumes(watch, prefix):
    key = f"{prefix}a"
    stamp = watch.stamp(key)
    assert kill_watch_connections() >= 1
    assert not watch.unchanged(key, stamp)  # cannot know what it missed while gone
    again = watch.stamp(key)  # reconnected
    assert again is not None and again != stamp
    assert watch.unchanged(key, again)
    cache.redis_client().delete(key)
    cache.redis_client().set(key, "2")
    assert not watch.unchanged(key, again)


def test_a_connection_that_went_quiet_is_proven_alive_before_trusting_it(
    watch, prefix, monkeypatch
):
    """A PING at least every LIVENESS_S: a connection Redis no longer serves is found out."""
    key = f"{prefix}a"
    stamp = watch.stamp(key)
    monkeypatch.setattr(watch_module, "LIVENESS_S", 0.0)
    assert watch.unchanged(key, stamp)  # pinged, answered
    assert kill_watch_connections() >= 1
    assert not watch.unchanged(key, stamp)


def test_nothing_is_trusted_while_redis_is_unreachable(watch, prefix, monkeypatch):
    key = f"{prefix}a"
    stamp = watch.stamp(key)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    cache.reset()
    try:
        assert not watch.unchanged(key, stamp)
        assert watch.stamp(key) is None
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        cache.reset()
    assert watch.unchanged(key, watch.stamp(key))
