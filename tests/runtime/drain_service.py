"""A minimal service run as a real process by test_service.py, to receive a real SIGTERM.

Its handler is still working when the SIGTERM arrives (it waits for the stop request, then
works a little more), so a clean exit with the message acked proves the drain.
"""

from __future__ import annotations

import asyncio
import sys

from gati_runtime.consumer import Delivery, Poison
from gati_runtime.outcomes import DONE, Outcome
from gati_runtime.provisioning import ConsumerSpec
from gati_runtime.service import ServiceContext, run_service
from gati_runtime.settings import Settings

WORK_SECONDS = 0.3


async def report_poison(poison: Poison) -> None:
    print(f"poison {poison.stream_sequence} {poison.reason}", flush=True)


async def main(ctx: ServiceContext) -> None:
    async def handle(delivery: Delivery[bytes]) -> Outcome:
        print(f"started {delivery.stream_sequence}", flush=True)
        await ctx.stop.wait()
        await asyncio.sleep(WORK_SECONDS)  # stands for work still to do after the SIGTERM
        print(f"finished {delivery.stream_sequence}", flush=True)
        return DONE

    loop = ctx.consumer(
        ConsumerSpec(durable="drain", filter_subjects=("gati.cr.>",)),
        decode=bytes,
        handler=handle,
        on_poison=report_poison,
    )
    print(f"ready {ctx.health.port}", flush=True)
    await loop.run(ctx.stop)


if __name__ == "__main__":
    sys.exit(run_service("drain-test", main, Settings.load()))
