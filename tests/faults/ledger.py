"""What the stream holds after a fault: duplicates, recorded spec changes, and `verify`'s verdict.

A duplicate is a second stored change event with the same subject and `Nats-Msg-Id` (object
uid + resourceVersion, or uid + deleted): the very thing JetStream de-duplication must have
dropped. A lost change is one `gati-operator verify` finds missing or stale: the cluster's
current state is not the last event of its subject.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats

from gati_contracts.events import ChangeEvent, decode_any
from gati_contracts.kinds import GATI_HANDLER
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, STREAM
from gati_streamtools.reader import read_range

VERIFY_TIMEOUT = 120.0
DRAIN_POLL = 0.5
SETTLE = 60.0
"""Seconds a `verify` difference may take to settle before it counts as a lost change; the
loop ends as soon as the drift is gone, so only a run that really lost something waits this
long, and a watcher still catching up on a loaded CI machine is not taken for a loss."""
VERIFY_PAUSE = 2.0


@dataclass(frozen=True)
class Ledger:
    change_events: int
    duplicates: int
    """Change events stored more than once for one subject and resourceVersion."""
    handler_generations: int
    """Distinct (handler, generation) pairs recorded: spec changes the stream can tell."""


async def _read_ledger(nats_url: str) -> Ledger:
    client = await nats.connect(servers=nats_url.split(","), name="fault-ledger")
    try:
        seen: Counter[tuple[str, str]] = Counter()
        generations: set[tuple[str, int | None]] = set()
        async for batch in read_range(
            client.jetstream(), STREAM, [f"{CR_ROOT}.>", f"{OWNED_ROOT}.>"]
        ):
            for message in batch:
                event = decode_any(message.data)
                if not isinstance(event, ChangeEvent):
                    continue
                seen[(message.subject, event.msg_id)] += 1
                if event.kind == GATI_HANDLER.kind:
                    generations.add((message.subject, event.generation))
        return Ledger(
            change_events=sum(seen.values()),
            duplicates=sum(count - 1 for count in seen.values()),
            handler_generations=len(generations),
        )
    finally:
        await client.close()


def read_ledger(nats_url: str) -> Ledger:
    return asyncio.run(_read_ledger(nats_url))


def settled_drift(nats_url: str, kubeconfig: Path, *, within: float = SETTLE) -> list[Any]:
    """Drift that stays: `verify` is a snapshot, and an object written a moment ago (a status
    the operator is still settling) is legitimately not in the stream yet. Only a difference
    that is still there, at the same resourceVersion, after `within` seconds is a lost change."""
    deadline = time.monotonic() + within
    drift = run_verify(nats_url, kubeconfig)["drift"]
    while drift and time.monotonic() < deadline:
        time.sleep(VERIFY_PAUSE)
        again = run_verify(nats_url, kubeconfig)["drift"]
        if again == drift:
            continue
        drift = [entry for entry in again if entry in drift]
    return list(drift)


def run_verify(nats_url: str, kubeconfig: Path) -> dict[str, Any]:
    """`gati-operator verify --json` as an operator would run it; exit 0 and 1 both report."""
    result = subprocess.run(
        [sys.executable, "-m", "gati_cli", "verify", "--json"],
        capture_output=True,
        text=True,
        timeout=VERIFY_TIMEOUT,
        check=False,
        env={**os.environ, "GATI_NATS_URL": nats_url, "KUBECONFIG": str(kubeconfig)},
    )
    if result.returncode not in (0, 1):
        raise AssertionError(f"verify could not check ({result.returncode}): {result.stderr}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def _pending(nats_url: str) -> dict[str, int]:
    client = await nats.connect(servers=nats_url.split(","), name="fault-drain")
    try:
        jsm = client.jsm()
        pending: dict[str, int] = {}
        for info in await jsm.consumers_info(STREAM):
            if info.config.durable_name:
                pending[info.name] = (info.num_pending or 0) + (info.num_ack_pending or 0)
        return pending
    finally:
        await client.close()


def await_drained(nats_url: str, timeout: float) -> float:
    """Until every durable consumer of `GATI` has nothing pending or unacknowledged: the
    operator has finished reacting, not merely reached the state; returns the monotonic time."""
    deadline = time.monotonic() + timeout
    while True:
        pending = asyncio.run(_pending(nats_url))
        if pending and not any(pending.values()):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"consumers still busy after {timeout}s: {pending}")
        time.sleep(DRAIN_POLL)
