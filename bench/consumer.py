"""The consumer loop's fixed client cost per delivery, alone, against a real nats-server.

    python -m bench.consumer [--messages 5000] [--subjects 500] [--repeats 3]

Run by hand, not by `make bench`. The reconciler takes ~5.4 deliveries per handler in a
convergence, ~3 of which change nothing, so what the loop itself costs between nats-py's parser
and the ack's write is paid on every one of them. Here the handler returns `Done` at once and
the decoder is `bytes`, so the CPU of this process (user + system) over a pass is the loop's:
pull requests, the subscription callback, lanes and slots, the log context, metrics, the ack.
`--messages` 2 KB messages over `--subjects` subjects are stored first (not measured); each
repeat reads them with a durable of its own, under uvloop as services run. The machine is
shared: compare old and new by alternating runs and the best of the repeats, never one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvloop

from gati_contracts.subjects import STREAM
from gati_runtime.consumer import ConsumerLoop, ConsumerOptions, Delivery, Poison
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.heap import settle_heap
from gati_runtime.logging import configure_logging
from gati_runtime.nats_connection import NatsConnection, connect
from gati_runtime.outcomes import DONE, Outcome
from gati_runtime.provisioning import ConsumerSpec, provision_bus
from gati_runtime.settings import Settings

BODY = b"x" * 2_000
SUBJECT_PREFIX = "gati.cr.bench.GatiHandler"
FLUSH_EVERY = 256


class _Count:
    """A handler that only counts, so the loop's own cost is what is measured."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self.all_seen = asyncio.Event()

    async def __call__(self, delivery: Delivery[bytes]) -> Outcome:
        self.seen += 1
        if self.seen >= self.expected:
            self.all_seen.set()
        return DONE


async def _no_poison(poison: Poison) -> None:
    raise AssertionError(f"poison in a benchmark of good messages: {poison.reason}")


async def _store(connection: NatsConnection, messages: int, subjects: int) -> None:
    for index in range(messages):
        await connection.client.publish(f"{SUBJECT_PREFIX}.h{index % subjects}", BODY)
        if index % FLUSH_EVERY == FLUSH_EVERY - 1:
            await connection.client.flush()
    # The stream's ack of the last one orders it after every plain publish before it.
    await connection.js.publish(f"{SUBJECT_PREFIX}.last", BODY)


async def _one_pass(connection: NatsConnection, durable: str, expected: int) -> float:
    """CPU µs of this process per delivery while one loop reads `expected` messages."""
    count = _Count(expected)
    spec = ConsumerSpec(
        durable=durable,
        filter_subjects=(f"{SUBJECT_PREFIX}.>",),
        max_deliver=5,
        ack_wait=timedelta(seconds=30),
    )
    loop = ConsumerLoop(
        connection,
        STREAM,
        spec,
        decode=bytes,
        handler=count,
        on_poison=_no_poison,
        options=ConsumerOptions(),
    )
    stop = asyncio.Event()
    started = time.process_time()
    running = asyncio.create_task(loop.run(stop))
    await count.all_seen.wait()
    await connection.client.flush()
    spent = time.process_time() - started
    stop.set()
    await running
    return spent / expected * 1e6


async def run(messages: int, subjects: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp), name="bench") as server:
        settings = Settings.load(environ={"GATI_NATS_URL": server.url, "GATI_INSTANCE_ID": "b"})
        connection = await connect(settings, name="bench")
        try:
            await provision_bus(connection.jsm, settings)
            await _store(connection, messages, subjects)
            settle_heap()
            passes = [
                await _one_pass(connection, f"bench-consumer-{index}", messages + 1)
                for index in range(repeats)
            ]
        finally:
            await connection.close()
    return {
        "messages": messages,
        "subjects": subjects,
        "cpu_us_per_delivery": [round(value, 1) for value in passes],
        "best_cpu_us_per_delivery": round(min(passes), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--subjects", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    if min(arguments.messages, arguments.subjects, arguments.repeats) < 1:
        parser.error("--messages, --subjects and --repeats must be at least 1")
    # Log lines are built and rendered as in a service, but not written to a terminal.
    with open(os.devnull, "w") as sink:
        configure_logging("json", "info", sink)
        result = uvloop.run(run(arguments.messages, arguments.subjects, arguments.repeats))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
