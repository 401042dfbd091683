"""Stream tools over a recorded stream: replay --dry-run events/s against the raw nats-py read
rate of the same stream in the same run, and `history` of one object among 100,000 events.

Starts its own nats-server, records N events (half GatiHandler changes over many handlers,
half reconciler outcomes), then measures. Prints a table and one JSON line.

    python -m bench.replay [--events 100000] [--handlers 1000]

Targets (issue 8): history of one object < 1 s in a 100,000-event stream; replay limited by
the reconciler's rendering, not by reading. Rates are given twice: per wall-clock second, and
per second of this process's CPU (`*_cpu_per_s`), which holds still when other work shares the
machine; nats-server runs in its own process, so the CPU figures are the client's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    OutcomeEvent,
    OutcomeResult,
    encode_event,
    event_headers,
)
from gati_contracts.subjects import STREAM, STREAM_SUBJECTS, cr_subject, status_subject
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings
from gati_streamtools.reader import read_range
from gati_streamtools.records import decode_record
from gati_streamtools.replay import ReconcilerReplay
from gati_streamtools.timeline import build_timeline, object_subjects, parse_object_ref

NAMESPACE = "bench"
PUBLISH_WINDOW = 2000


def _handler(index: int, revision: int) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {
            "name": f"h{index}",
            "namespace": NAMESPACE,
            "uid": f"uid-{index}",
            "resourceVersion": str(revision),
            "generation": revision,
        },
        "spec": {
            "handlerPath": f"/api/h{index}",
            "version": "v1",
            "image": f"ghcr.io/bench/h{index}:1.{revision}.0",
            "replicas": 2,
            "port": 8080,
            "env": {"LOG_LEVEL": "info", "REVISION": str(revision)},
        },
    }


async def _record(nc: Client, events: int, handlers: int) -> None:
    """Changes in gathered windows, then one outcome per change naming its stream sequence."""
    js = nc.jetstream()
    now = datetime.now(UTC)
    for first in range(0, events // 2, PUBLISH_WINDOW):
        changes = []
        for n in range(first, min(first + PUBLISH_WINDOW, events // 2)):
            index, revision = n % handlers, n // handlers + 1
            obj = _handler(index, revision)
            changes.append(
                ChangeEvent.of(ChangeType.MODIFIED, obj, source="bench", observed_at=now)
            )
        acks = await asyncio.gather(
            *(
                js.publish(
                    cr_subject(c.kind, c.namespace, c.name),
                    encode_event(c),
                    headers=event_headers(c),
                )
                for c in changes
            )
        )
        outcomes = [
            OutcomeEvent(
                event_id=f"reconciler:{ack.seq}",
                service="reconciler",
                source="bench",
                action="reconciled",
                result=OutcomeResult.SUCCEEDED,
                kind=c.kind,
                namespace=c.namespace,
                name=c.name,
                reason="Applied",
                input_stream=STREAM,
                input_sequence=ack.seq,
                observed_at=now,
            )
            for c, ack in zip(changes, acks, strict=True)
        ]
        await asyncio.gather(
            *(
                js.publish(
                    status_subject(o.kind, o.namespace, o.name),
                    encode_event(o),
                    headers=event_headers(o),
                )
                for o in outcomes
            )
        )


async def _raw_read(nc: Client) -> tuple[int, float, float]:
    """The nats-py ceiling: an ordered consumer with a callback that only counts."""
    done = asyncio.Event()
    count = 0

    async def on_message(msg: Msg) -> None:
        nonlocal count
        count += 1
        if msg.metadata.num_pending == 0:
            done.set()

    from nats.js.api import ConsumerConfig

    started, cpu = time.perf_counter(), time.process_time()
    sub = await nc.jetstream().subscribe(
        STREAM_SUBJECTS[0],
        stream=STREAM,
        cb=on_message,
        ordered_consumer=True,
        config=ConsumerConfig(filter_subjects=list(STREAM_SUBJECTS)),
    )
    await done.wait()
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    await sub.unsubscribe()
    return count, elapsed, used


async def _read_all(nc: Client) -> tuple[int, float, float]:
    """The tools' read path: the reader, and each message decoded into its event."""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    async for batch in read_range(nc.jetstream(), STREAM, list(STREAM_SUBJECTS)):
        for message in batch:
            decode_record(message)
        count += len(batch)
    return count, time.perf_counter() - started, time.process_time() - cpu


async def _replay(nc: Client) -> tuple[int, int, float, float]:
    adapter = ReconcilerReplay()
    started, cpu = time.perf_counter(), time.process_time()
    events = decisions = 0
    async for batch in read_range(nc.jetstream(), STREAM, list(adapter.filters)):
        for message in batch:
            events += 1
            decisions += len(adapter.decide(decode_record(message)))
    return events, decisions, time.perf_counter() - started, time.process_time() - cpu


async def _history(nc: Client, name: str) -> tuple[int, float]:
    started = time.perf_counter()
    ref = parse_object_ref(f"gh/{NAMESPACE}/{name}")
    records = [
        decode_record(m)
        async for b in read_range(nc.jetstream(), STREAM, object_subjects(ref))
        for m in b
    ]
    timeline = build_timeline(records)
    return len(timeline), time.perf_counter() - started


async def run(events: int, handlers: int, store: Path) -> dict[str, Any]:
    server = EmbeddedNats(store, name="gati-bench-replay")
    server.start()
    try:
        nc = await nats.connect(server.url)
        await provision_bus(nc.jsm(), Settings.load(environ={"GATI_NATS_URL": server.url}))
        started = time.perf_counter()
        await _record(nc, events, handlers)
        publish_s = time.perf_counter() - started
        raw_count, raw_s, raw_cpu = await _raw_read(nc)
        tool_count, tool_s, tool_cpu = await _read_all(nc)
        replayed, decisions, replay_s, replay_cpu = await _replay(nc)
        entries, history_s = await _history(nc, f"h{handlers // 2}")
        cli_started = time.perf_counter()
        subprocess.run(  # noqa: ASYNC221 - timing the command as a user runs it, alone
            [
                sys.executable,
                "-m",
                "gati_cli",
                "history",
                f"gh/{NAMESPACE}/h{handlers // 2}",
                "--nats-url",
                server.url,
            ],
            check=True,
            capture_output=True,
        )
        cli_s = time.perf_counter() - cli_started
        await nc.close()
    finally:
        server.stop()
    return {
        "events": raw_count,
        "publish_per_s": round(raw_count / publish_s),
        "raw_read_per_s": round(raw_count / raw_s),
        "raw_read_cpu_per_s": round(raw_count / raw_cpu),
        "reader_per_s": round(tool_count / tool_s),
        "reader_cpu_per_s": round(tool_count / tool_cpu),
        "replay_events": replayed,
        "replay_decisions": decisions,
        "replay_per_s": round(replayed / replay_s),
        "replay_cpu_per_s": round(replayed / replay_cpu),
        "replay_of_raw_cpu": round(replayed / replay_cpu / (raw_count / raw_cpu), 3),
        "history_entries": entries,
        "history_s": round(history_s, 3),
        "history_cli_s": round(cli_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--handlers", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gati-bench-replay-") as store:
        result = asyncio.run(run(args.events, args.handlers, Path(store)))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
