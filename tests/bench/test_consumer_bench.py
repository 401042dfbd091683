"""bench.consumer at tiny N: every stored message is read by every pass and a figure comes out.

No timing is asserted (speed targets live in bench/); a pass that lost a message would wait for
ever, so the run is bounded and its end is the assertion.
"""

from __future__ import annotations

import asyncio

from bench.consumer import run


async def test_every_pass_reads_every_message_and_reports_its_cost() -> None:
    result = await asyncio.wait_for(run(messages=40, subjects=7, repeats=2), 60)
    assert (result["messages"], result["subjects"]) == (40, 7)
    assert len(result["cpu_us_per_delivery"]) == 2
    assert result["best_cpu_us_per_delivery"] == min(result["cpu_us_per_delivery"]) > 0
