"""settle_heap freezes what start-up left alive and makes young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gati_runtime.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_the_young_threshold_raised() -> None:
    _, middle, old = gc.get_threshold()
    survivor = {"alive": ["after start-up"]}
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert not any(tracked is survivor for tracked in gc.get_objects())  # out of reach
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("restored_gc")
def test_cycles_made_afterwards_are_still_collected() -> None:
    settle_heap(young_threshold=50)
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_a_threshold_below_one_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="young_threshold must be at least 1, got 0"):
        settle_heap(young_threshold=0)
