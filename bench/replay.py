"""Stream tools over a recorded stream: replay --dry-run events/s against the raw nats-py read
rate of the same stream in the same run, and `history` of one object among 100,000 events.

Starts its own nats-server and records N events as the operator's stream holds them: for each
GatiHandler spec change (over many handlers), the change, the reconciler's outcome, and the
status writes that follow it (`--echoes`, by default two: Progressing with the new
observedGeneration, then Running), which the watcher records as changes too. Then measures, and
prints a table and, last, one JSON line.

    python -m bench.replay [--events 100000] [--handlers 1000] [--echoes 2]

Targets (issue 10): replay at least 25 % of the raw read rate; history of one object < 1 s in a
100,000-event stream. A spec change is parsed, rendered and diffed; an echo is recognised as
the same render and costs little more than reading it, so the replay rate follows the mix:
`--echoes 0` is the worst case, every event a new spec. Rates are given twice: per wall-clock
second, and per second of this process's CPU (`*_cpu_per_s`), which holds still when other work
shares the machine; nats-server runs in its own process, so the CPU figures are the client's
alone. Recording publishes without waiting for each ack (one per window), so it takes seconds.
The replay reads through the tools' reader (`gati_streamtools.reader`), which asks the
server for one pattern covering the reconciler's subjects and matches the rest itself (a
multi-filter consumer is served 10-40 times slower by nats-server 2.15).

Where its CPU goes (session 6, loaded machine): the read ~25-30 % (the reader ~2 us a message
over nats-py's own work: the ack-subject position, the subject match and the StoredMessage; the
stored time is built only when a tool asks for it). Of the decoding and deciding that follow,
timed part by part over the bench's events in memory: pydantic's validation of each spec change
~25 %, the reconciler's render of it ~24 %, the manifest diff ~26 % (the four manifests of a
spec change against the previous rendering, ~70 us a spec change in the loop, over half of it
comparing the subtrees both renderings hold) and its change lines ~4 %, decoding ~10 % (one decode
per event), the echo check ~8 % (the render input of each event against the last one
rendered), the decisions ~4 %. So the share of the raw read is bounded by the reconciler's own
parse and render of a spec change, which the replay must run as the service does, by the diff
a reviewer reads, and by the read itself.

The raw rate of this stream: the issue's ~180,000 messages/s is not what nats-py's ordered
consumer with a callback reads of it. Client CPU per second on this machine (load ~10, 100,000
messages each): ~85,000/s for 16-byte messages without headers, ~42,000/s for the same with the
three headers every event carries (Gati-Schema, Gati-Schema-Version, Nats-Msg-Id), ~70,000/s
for 1,100 bytes without headers and ~36,000-40,000/s for 1,100 bytes with them, the shape of
this stream (590-650 bytes of event, three headers). Headers halve the rate: nats-py parses
every message's header block in Python (`Client._parse_header_lines`, ~20 % of a raw read's
CPU), then the payload size and the JetStream reply subject add the rest. So 25 % of this
stream's raw read is ~9,000 events/s, and the issue's ~45,000/s would be faster than the raw
read of these messages. Each run measures the issue's own method as well, in a stream of its own
(`reference_read_per_s`: 100,000 messages of 16 bytes without headers), so the table can say
what it reads on the machine of the run beside the read of the stream the replay reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
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
from gati_contracts.subjects import STREAM, cr_subject, status_subject
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings
from gati_streamtools.reader import read_range
from gati_streamtools.records import decode_record
from gati_streamtools.replay import ReconcilerReplay
from gati_streamtools.subject_filters import WHOLE_STREAM
from gati_streamtools.timeline import build_timeline, object_subjects, parse_object_ref

NAMESPACE = "bench"
PUBLISH_WINDOW = 2000


def _handler(
    index: int, generation: int, resource_version: int, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {
            "name": f"h{index}",
            "namespace": NAMESPACE,
            "uid": f"uid-{index}",
            "resourceVersion": str(resource_version),
            "generation": generation,
        },
        "spec": {
            "handlerPath": f"/api/h{index}",
            "version": "v1",
            "image": f"ghcr.io/bench/h{index}:1.{generation}.0",
            "replicas": 2,
            "port": 8080,
            "env": {"LOG_LEVEL": "info", "REVISION": str(generation)},
        },
    }
    if status is not None:
        obj["status"] = status
    return obj


def _changes(first: int, last: int, handlers: int, echoes: int) -> list[ChangeEvent]:
    """Spec changes `first` to `last` (excluded), each followed by its status echoes: the writes
    of the reconciler (phase, observedGeneration, then readiness) that the watcher records."""
    now = datetime.now(UTC)
    changes = []
    for n in range(first, last):
        index, generation = n % handlers, n // handlers + 1
        version = (n // handlers) * (1 + echoes) + 1
        for echo in range(1 + echoes):
            status = (
                None
                if echo == 0
                else {
                    "phase": "Running" if echo == echoes else "Progressing",
                    "observedGeneration": generation,
                    "readyReplicas": 2 if echo == echoes else 0,
                }
            )
            obj = _handler(index, generation, version + echo, status)
            changes.append(
                ChangeEvent.of(ChangeType.MODIFIED, obj, source="bench", observed_at=now)
            )
    return changes


async def _publish(nc: Client, events: Sequence[ChangeEvent | OutcomeEvent]) -> list[int]:
    """Publish in order and return each stream sequence. Only the last waits for its ack:
    one connection's messages reach the stream in order, so the sequences before it follow
    from its own, and one request per window keeps the server's ingest queue short."""
    for event in events[:-1]:
        await nc.publish(subject_of(event), encode_event(event), headers=event_headers(event))
    last = events[-1]
    ack = await nc.jetstream().publish(
        subject_of(last), encode_event(last), headers=event_headers(last)
    )
    return list(range(ack.seq - len(events) + 1, ack.seq + 1))


def subject_of(event: ChangeEvent | OutcomeEvent) -> str:
    if isinstance(event, ChangeEvent):
        return cr_subject(event.kind, event.namespace, event.name)
    return status_subject(event.kind, event.namespace, event.name)


async def _record(nc: Client, events: int, handlers: int, echoes: int) -> None:
    """Changes in windows, then one outcome per spec change naming its stream sequence; the
    stream must then hold exactly `events` messages (no core publish was dropped)."""
    spec_changes = events // (2 + echoes)
    now = datetime.now(UTC)
    for first in range(0, spec_changes, PUBLISH_WINDOW):
        changes = _changes(first, min(first + PUBLISH_WINDOW, spec_changes), handlers, echoes)
        sequences = await _publish(nc, changes)
        outcomes = [
            OutcomeEvent(
                event_id=f"reconciler:{sequence}",
                service="reconciler",
                source="bench",
                action="reconciled",
                result=OutcomeResult.SUCCEEDED,
                kind=c.kind,
                namespace=c.namespace,
                name=c.name,
                reason="Applied",
                input_stream=STREAM,
                input_sequence=sequence,
                observed_at=now,
            )
            for c, sequence in zip(changes, sequences, strict=True)
            if "status" not in c.obj
        ]
        await _publish(nc, outcomes)
    stored = (await nc.jsm().stream_info(STREAM)).state.messages
    if stored != spec_changes * (2 + echoes):
        raise RuntimeError(
            f"stream {STREAM} holds {stored} messages, not {spec_changes * (2 + echoes)}"
        )


async def _raw_read(nc: Client) -> tuple[int, float, float]:
    """The nats-py ceiling the issue names: an ordered consumer over the whole stream with a
    message callback that only counts. No filter: `GATI` holds nothing but its subjects, and
    nats-server serves a consumer with the four as `filter_subjects` 10-40 times slower
    (`gati_streamtools.subject_filters`). It stops at the stream's message count, read before:
    asking each message for `metadata.num_pending` would parse its ack subject and build a
    datetime, over half the cost of such a read."""
    total = (await nc.jetstream().stream_info(STREAM)).state.messages
    elapsed, used = await _ordered_read(nc, STREAM, WHOLE_STREAM, total)
    return total, elapsed, used


async def _ordered_read(nc: Client, stream: str, subject: str, total: int) -> tuple[float, float]:
    """Wall and CPU seconds of an ordered consumer whose callback only counts to `total`."""
    done = asyncio.Event()
    count = 0

    async def on_message(msg: Msg) -> None:
        nonlocal count
        count += 1
        if count >= total:
            done.set()

    started, cpu = time.perf_counter(), time.process_time()
    sub = await nc.jetstream().subscribe(
        subject, stream=stream, cb=on_message, ordered_consumer=True
    )
    await done.wait()
    elapsed, used = time.perf_counter() - started, time.process_time() - cpu
    await sub.unsubscribe()
    return elapsed, used


REFERENCE_STREAM = "BENCH_REFERENCE"
REFERENCE_MESSAGES = 100_000
REFERENCE_PAYLOAD = b"0123456789abcdef"


async def _reference_read(nc: Client) -> tuple[float, float]:
    """The issue's own reference (its ~180,000 messages/s): the same ordered consumer with a
    message callback, over 100,000 messages of 16 bytes without headers, in a stream of their
    own (file storage, as `GATI`) deleted after. Wall and CPU seconds, so the note can say what
    this machine reads by the issue's method beside the rate of the stream a replay reads."""
    js = nc.jetstream()
    await js.add_stream(name=REFERENCE_STREAM, subjects=["bench.reference"])
    try:
        for first in range(0, REFERENCE_MESSAGES, PUBLISH_WINDOW):
            for _ in range(first, min(first + PUBLISH_WINDOW, REFERENCE_MESSAGES) - 1):
                await nc.publish("bench.reference", REFERENCE_PAYLOAD)
            await js.publish("bench.reference", REFERENCE_PAYLOAD)
        stored = (await js.stream_info(REFERENCE_STREAM)).state.messages
        if stored != REFERENCE_MESSAGES:
            raise RuntimeError(
                f"stream {REFERENCE_STREAM} holds {stored}, not {REFERENCE_MESSAGES}"
            )
        return await _ordered_read(nc, REFERENCE_STREAM, "bench.reference", REFERENCE_MESSAGES)
    finally:
        await js.delete_stream(REFERENCE_STREAM)


async def _replay(nc: Client) -> tuple[int, Counter[str], float, float]:
    """The `replay --dry-run --service reconciler` path without printing: read, decode, decide."""
    adapter = ReconcilerReplay()
    started, cpu = time.perf_counter(), time.process_time()
    events, actions = 0, Counter[str]()
    async for batch in read_range(nc.jetstream(), STREAM, list(adapter.filters)):
        for message in batch:
            events += 1
            # Counted one by one: Counter.update(iterable) asks isinstance(Mapping) per event.
            for decision in adapter.decide(decode_record(message)):
                actions[decision.action] += 1
    return events, actions, time.perf_counter() - started, time.process_time() - cpu


async def _history(nc: Client, name: str) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    ref = parse_object_ref(f"gh/{NAMESPACE}/{name}")
    records = [
        decode_record(m)
        async for b in read_range(nc.jetstream(), STREAM, object_subjects(ref))
        for m in b
    ]
    timeline = build_timeline(records)
    return len(timeline), time.perf_counter() - started, time.process_time() - cpu


def _children_cpu() -> float:
    """CPU seconds of the waited-for child processes: the history command's, when a loaded
    machine stretches its wall time (mostly its imports: nats-py with aiohttp, pydantic)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run(events: int, handlers: int, echoes: int, store: Path) -> dict[str, Any]:
    server = EmbeddedNats(store, name="gati-bench-replay")
    server.start()
    try:
        nc = await nats.connect(server.url)
        await provision_bus(nc.jsm(), Settings.load(environ={"GATI_NATS_URL": server.url}))
        started = time.perf_counter()
        await _record(nc, events, handlers, echoes)
        publish_s = time.perf_counter() - started
        raw_count, raw_s, raw_cpu = await _raw_read(nc)
        replayed, actions, replay_s, replay_cpu = await _replay(nc)
        entries, history_s, history_cpu = await _history(nc, f"h{handlers // 2}")
        cli_started, cli_cpu = time.perf_counter(), _children_cpu()
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
        cli_s, cli_cpu = time.perf_counter() - cli_started, _children_cpu() - cli_cpu
        reference_s, reference_cpu = await _reference_read(nc)
        await nc.close()
    finally:
        server.stop()
    return {
        "events": raw_count,
        "publish_per_s": round(raw_count / publish_s),
        "raw_read_per_s": round(raw_count / raw_s),
        "raw_read_cpu_per_s": round(raw_count / raw_cpu),
        "replay_events": replayed,
        "replay_rendered": actions["apply"],
        "replay_echoes": actions["unchanged"],
        "replay_per_s": round(replayed / replay_s),
        "replay_cpu_per_s": round(replayed / replay_cpu),
        "replay_of_raw": round(replayed / replay_s / (raw_count / raw_s), 3),
        "replay_of_raw_cpu": round(replayed / replay_cpu / (raw_count / raw_cpu), 3),
        "reference_read_per_s": round(REFERENCE_MESSAGES / reference_s),
        "reference_read_cpu_per_s": round(REFERENCE_MESSAGES / reference_cpu),
        "history_entries": entries,
        "history_s": round(history_s, 3),
        "history_cpu_s": round(history_cpu, 3),
        "history_cli_s": round(cli_s, 3),
        "history_cli_cpu_s": round(cli_cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--handlers", type=int, default=1000)
    parser.add_argument(
        "--echoes",
        type=int,
        default=2,
        help="status echoes recorded after each spec change (0: every change renders)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gati-bench-replay-") as store:
        result = asyncio.run(run(args.events, args.handlers, args.echoes, Path(store)))
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
