"""This process's copies of the snapshots it last read, used without asking Redis while Redis's
change notices (client tracking, `chalicelib/cache/watch.py`) report no change of the hash since it
was read: the delete that every write sends is such a change, and its notice reaches every
instance as Redis answers the writer. The snapshot's expiry is one too."""

from __future__ import annotations

from chalicelib.cache import key
from chalicelib.cache.snapshots import Snapshot, Views, now_us
from chalicelib.cache.watch import KeyWatch, Stamp


class LocalCopies:
    """Each copy is kept with the build token Redis gave it, so that a read whose snapshot has not
    changed moves a few bytes from Redis instead of the whole map, and with the watch's stamp
    taken before it was read, so that while Redis reports no change of the hash it is used
    without asking Redis at all. The JSON rendered from it is reused until the next hold in it
    runs out."""

    MAX_SESSIONS = 1024

    def __init__(self) -> None:
        self.snapshots: dict[str, tuple[bytes, Snapshot, Stamp | None]] = {}
        self.views: dict[str, Views] = {}

    def remember(
        self, session_id: str, build: bytes, snapshot: Snapshot, stamp: Stamp | None
    ) -> None:
        if len(self.snapshots) >= self.MAX_SESSIONS:
            self.snapshots.clear()  # crude, but bounded; the cost is one full transfer each
            self.views.clear()
        self.snapshots[session_id] = (build, snapshot, stamp)

    def views_of(self, session_id: str, snapshot: Snapshot) -> Views:
        now = now_us()
        views = self.views.get(session_id)
        if views is None or views.snapshot is not snapshot or now >= views.valid_until_us:
            views = Views.render(session_id, snapshot, now)
            self.views[session_id] = views
        return views


copies = LocalCopies()
watch = KeyWatch(lambda: key("seatmap", ""))
