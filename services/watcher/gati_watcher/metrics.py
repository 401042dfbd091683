"""The watcher's Prometheus metrics, served by the runtime's health server at `/metrics`."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

EVENTS_PUBLISHED = Counter(
    "gati_watcher_events_published_total",
    "Change events stored in the stream (duplicates not counted)",
    ["kind", "type"],
)
DUPLICATES = Counter(
    "gati_watcher_duplicates_total",
    "Changes not stored because the stream had them: acknowledged as duplicates, or found "
    "recorded (or overtaken) by another replica after a conflict",
    ["kind"],
)
PUBLISH_SECONDS = Histogram(
    "gati_watcher_publish_seconds",
    "From handing a change to NATS until its PubAck, retries included",
    buckets=_LATENCY_BUCKETS,
)
CHANGE_LAG_SECONDS = Histogram(
    "gati_watcher_change_lag_seconds",
    "From reading a change off the watch until the stream acknowledged it",
    buckets=_LATENCY_BUCKETS,
)
RELISTS = Counter(
    "gati_watcher_relists_total", "Full lists diffed against the stream", ["kind", "reason"]
)
WATCH_RESTARTS = Counter(
    "gati_watcher_watch_restarts_total", "Watches ended and started again", ["kind", "reason"]
)
SKIPPED = Counter(
    "gati_watcher_skipped_total",
    "Objects or stream messages the watcher could not use (logged with the reason)",
    ["kind", "reason"],
)


@cache
def published(kind: str, change: str) -> Counter:
    """`EVENTS_PUBLISHED` of one kind and change type. Every stored change counts itself, and
    `labels()` (a lock, a label check, a tuple) cost four times the increment; the label sets
    are few (kinds times change types), so each child is looked up once. `change` may be the
    `ChangeType` itself: a str equal to its value, in the cache and in the label alike."""
    return EVENTS_PUBLISHED.labels(kind=kind, type=change)


@cache
def duplicates(kind: str) -> Counter:
    """`DUPLICATES` of one kind, looked up once like `published`."""
    return DUPLICATES.labels(kind=kind)
