"""When a watch ends, whether to watch again from where it stopped or to list everything.

A Python watch can stay connected and deliver nothing (a known failure of Python operators);
with bookmarks requested the server speaks at least once per bookmark interval, so a read that
waits for several intervals has found a silent watch. Only a `410 Gone` (history no longer
reaches our resourceVersion) or a NATS outage (the stream may have missed what we published)
needs a relist; anything else resumes from the last resourceVersion seen, which loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WatchEnd(StrEnum):
    CLOSED = "closed"
    """The server ended the watch (its timeoutSeconds): routine."""
    SILENT = "silent"
    """Nothing arrived, not even a bookmark, within the inactivity timeout."""
    EXPIRED = "expired"
    """410 Gone: our resourceVersion fell out of the server's history."""
    FAILED = "failed"
    """Connection refused, reset, or an error status other than 410."""
    NATS_RECONNECTED = "nats-reconnected"
    PUBLISH_FAILED = "publish-failed"
    """A change could not be stored for a reason other than an outage; a relist repairs it."""


class Next(StrEnum):
    REWATCH = "rewatch"
    RELIST = "relist"


def next_step(end: WatchEnd) -> Next:
    if end in (WatchEnd.EXPIRED, WatchEnd.NATS_RECONNECTED, WatchEnd.PUBLISH_FAILED):
        return Next.RELIST
    return Next.REWATCH


@dataclass(frozen=True)
class Inactivity:
    bookmark_interval: float = 60.0
    """How often the server sends a bookmark on an idle watch (about a minute on Kubernetes)."""
    missed_bookmarks: float = 2.5
    """Intervals to wait before calling the watch silent; over 1 so a late bookmark is no alarm."""
    floor: float = 1.0

    def __post_init__(self) -> None:
        if self.bookmark_interval <= 0:
            raise ValueError(f"bookmark_interval must be > 0 seconds, got {self.bookmark_interval}")
        if self.missed_bookmarks <= 1:
            raise ValueError(f"missed_bookmarks must be > 1, got {self.missed_bookmarks}")

    @property
    def timeout(self) -> float:
        """Longest wait for any byte of a watch before it is restarted."""
        return max(self.bookmark_interval * self.missed_bookmarks, self.floor)
