"""The timer-driven collector of a kubesim with a process to itself."""

from __future__ import annotations

import gc
import weakref

import pytest

from gati_kubesim.collector import PeriodicCollector
from gati_kubesim.server import KubeSim


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


async def test_a_pass_frees_cycles_and_stop_gives_the_collector_back() -> None:
    assert gc.isenabled()
    collector = PeriodicCollector(period=3600)
    collector.start()
    try:
        assert not gc.isenabled()
        survivor = _Node()
        collector.collect()  # survivor outlives a pass and stays in the next ones' scan
        node = _Node()
        ref = weakref.ref(node)
        del node
        assert ref() is not None  # nothing collects it between passes
        old = weakref.ref(survivor)
        del survivor
        assert collector.collect() > 0
        assert ref() is None
        assert old() is None
        assert collector.passes == 2
    finally:
        await collector.stop()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_period_that_is_not_positive_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="period"):
        PeriodicCollector(period=0)


async def test_only_a_server_that_owns_its_process_takes_over_collection() -> None:
    async with KubeSim() as shared:
        assert shared.collector is None
        assert gc.isenabled()
    async with KubeSim(owns_process=True) as owner:
        assert owner.collector is not None
        assert not gc.isenabled()
    assert gc.isenabled()
