"""The garbage collector's settings for a service that has finished starting.

A service's start-up leaves ~70,000 objects that never die (modules, the `kubernetes` client's
model classes, pydantic schemas), and each full collection walks them all, with the event loop
stopped. Its steady state then allocates mostly short-lived acyclic containers (decoded JSON,
events, futures) that reference counting frees; the collector's default young threshold (700
allocations) still ran a young collection every few API answers, and those and the promotions
they cause cost the reconciler about a tenth of its CPU in a burst. So, once started: collect,
freeze what is alive, and collect the young generation less often. Cycles are still collected,
only in bigger batches; the memory they hold meanwhile is bounded by the threshold.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_THRESHOLD: Final = 10_000
"""Allocations between young collections (CPython's default is 700)."""


def settle_heap(young_threshold: int = YOUNG_THRESHOLD) -> None:
    """Call once, when start-up is done and the steady state is about to begin."""
    if young_threshold < 1:
        raise ValueError(f"young_threshold must be at least 1, got {young_threshold}")
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
