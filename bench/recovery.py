"""Scenario 5 of issue 10: a watcher that was down catches up with the changes it missed.

    python -m bench.recovery [--changes 1000] [--repeats 3]

Per repeat, in a namespace of its own: objects are created while `gati-operator run watcher`
runs and reach the stream; the watcher is stopped (SIGTERM); `--changes` changes are made to as
many distinct objects (40 % created, 40 % updated, 20 % deleted: a relist publishes the state
of each object, not every step it went through); the watcher is started again. Figures, from
the moment the process is spawned:
- `recovery_s`: until every missed change is in the stream (target < 5 s);
- `startup_s`: until the first of them is (interpreter, imports, connections, first list).
kubesim and nats-server run in their own processes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import nats

from bench.harness import ChildKubeSim, spread
from bench.watcher import (
    BOOKMARK_INTERVAL,
    Arrivals,
    WatcherProcess,
    Writer,
    gather_limited,
    kubeconfig,
    print_result,
    setup_cluster,
    tail,
)
from gati_contracts.headers import change_msg_id
from gati_runtime.embedded_nats import EmbeddedNats
from gati_runtime.nats_connection import connect
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings


async def _repeat(
    session: aiohttp.ClientSession,
    url: str,
    namespace: str,
    changes: int,
    watcher: WatcherProcess,
    arrivals: Arrivals,
) -> dict[str, float]:
    """The watcher is running on entry and on exit."""
    created, updated = changes * 2 // 5, changes * 2 // 5
    deleted = changes - created - updated
    writer = Writer(session, url, namespace)
    existing = [f"old{i}" for i in range(updated + deleted)]
    metadata = await gather_limited([writer.create(name) for name in existing])
    await arrivals.until_ids(
        {change_msg_id(m["uid"], m["resourceVersion"], deleted=False) for m in metadata}
    )
    uids = {m["name"]: m["uid"] for m in metadata}

    watcher.stop()
    news = await gather_limited([writer.create(f"new{i}") for i in range(created)])
    patched = await gather_limited(
        [writer.patch(name, i) for i, name in enumerate(existing[:updated])]
    )
    await gather_limited([writer.delete(name) for name in existing[updated:]])
    missed = (
        {change_msg_id(m["uid"], m["resourceVersion"], deleted=False) for m in news}
        | {
            change_msg_id(uids[name], rv, deleted=False)
            for name, rv in zip(existing[:updated], patched, strict=True)
        }
        | {change_msg_id(uids[name], "", deleted=True) for name in existing[updated:]}
    )
    assert len(missed) == changes

    spawned = time.perf_counter()
    watcher.start()
    await arrivals.until_ids(missed)
    times = [arrivals.by_id[msg_id] - spawned for msg_id in missed]
    return {"recovery_s": max(times), "startup_s": min(times)}


async def run(changes: int, repeats: int) -> dict[str, Any]:
    kubesim = ChildKubeSim(bookmark_interval=BOOKMARK_INTERVAL)
    url = kubesim.start()
    namespaces = [f"recovery-{i}" for i in range(repeats)]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp), name="bench") as server:
        settings = Settings.load(environ={"GATI_NATS_URL": server.url, "GATI_INSTANCE_ID": "b"})
        connection = await connect(settings, name="bench")
        await provision_bus(connection.jsm, settings)
        await connection.close()
        setup_cluster(url, namespaces)
        nc = await nats.connect(server.url)
        arrivals = Arrivals()
        await tail(nc, arrivals)
        watcher = WatcherProcess(
            server.url, kubeconfig(url, Path(tmp) / "kubeconfig"), Path(tmp) / "watcher.log"
        )
        results = []
        async with aiohttp.ClientSession() as session:
            with watcher.running():
                for namespace in namespaces:
                    results.append(
                        await _repeat(session, url, namespace, changes, watcher, arrivals)
                    )
        await nc.close()
    kubesim.stop()
    recovery = spread([r["recovery_s"] for r in results])
    startup = spread([r["startup_s"] for r in results])
    return {
        "missed_changes": changes,
        "repeats": repeats,
        "recovery_s_min": recovery["min"],
        "recovery_s_median": recovery["median"],
        "recovery_s_max": recovery["max"],
        "startup_s_median": startup["median"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.changes < 5 or args.repeats < 1:
        parser.error("--changes must be at least 5 and --repeats at least 1")
    print_result(asyncio.run(run(args.changes, args.repeats)))


if __name__ == "__main__":
    main()
