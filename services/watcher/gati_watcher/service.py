"""`gati-operator run watcher`: the runtime's lifecycle around one `Watcher`."""

from __future__ import annotations

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
        ctx.health.add_readiness("kubernetes", watcher.synced)
        await watcher.run(ctx.stop)
