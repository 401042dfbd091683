"""`gati-operator run watcher`: the runtime's lifecycle around one `Watcher`."""

from __future__ import annotations

import gc
from dataclasses import replace

from kubernetes import client

from gati_runtime.kube_config import kube_configuration
from gati_runtime.service import ServiceContext
from gati_watcher.watcher import Watcher, WatcherOptions


async def main(ctx: ServiceContext) -> None:
    options = replace(WatcherOptions.from_environ(), redaction=ctx.settings.redact_fields)
    with client.ApiClient(kube_configuration(ctx.settings.kube_context)) as api:
        watcher = Watcher(
            api,
            ctx.connection,
            ctx.publisher,
            stream=ctx.settings.stream,
            source=ctx.settings.instance_id,
            namespaces=ctx.settings.namespaces,
            options=options,
        )
        freeze_start_up_heap()
        ctx.health.add_readiness("kubernetes", watcher.synced)
        await watcher.run(ctx.stop)


YOUNG_COLLECTION_THRESHOLD = 5000
"""Container allocations between two young collections (CPython's default is 700). A change
allocates dozens of containers and nearly all die by reference counting; at 700 a burst of
8,000 changes ran 154 collections, each walking the objects of up to 1,024 changes in flight
(9 us of CPU per change); at 5,000 it runs 20 (2-5 us per change), each pausing well under a
millisecond."""
MIDDLE_COLLECTION_EVERY = 20
"""Young collections per middle one (default 10): fewer walks of the changes in flight."""


def freeze_start_up_heap() -> None:
    """Move everything alive after start-up (modules, the `kubernetes` client's thousands of
    model classes, clients) out of the collector's reach. Left in, each full collection walks
    ~70,000 objects that never die: 40-500 ms with the event loop stopped, which was the p99
    of the change-to-event lag (one such pause at 500 changes/s holds up ~1 % of changes).
    Collected first, so no garbage is frozen with them; then collections are spaced out."""
    gc.collect()
    gc.freeze()
    oldest = gc.get_threshold()[2]
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_EVERY, oldest)
