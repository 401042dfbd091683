"""Bounded identity caches: how kubesim's memories of stored objects stay small and cheap.

Several caches remember what they computed for a stored dict (its admitted fields, its
decoded managedFields, a schema's merge node), keyed by identity and insertion-ordered.
Evicting the oldest entry one at a time (`del cache[next(iter(cache))]`) looks cheap but is
not: CPython leaves a hole where each deleted entry was until the dict is resized, and
`iter` walks every hole at the front, ~12 us per eviction at 8,192 entries and ~25 us at
32,768, paid on every write once a cache is full. Dropping the older half at once rebuilds
the dict without holes, a cost spread over the half it frees.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def trim(cache: dict[K, V], limit: int) -> None:
    """Keep `cache` at most `limit` entries: once over, only its newer half stays."""
    if len(cache) > limit:
        newer = list(cache.items())[len(cache) // 2 :]
        cache.clear()
        cache.update(newer)
