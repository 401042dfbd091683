"""`gati-operator run scaler`: handler changes from `GATI`, samples from `GATI_METRICS`, a tick.

Both durables are shared by every replica; what one replica does for a handler is decided by
the handler's lease (see `gati_scaler.scaler`), so the durables only spread the work of
reading and checking input.
"""

from __future__ import annotations

import os
from typing import Final

from kubernetes import client

from gati_contracts.events import ChangeEvent, TrafficSample, decode_event
from gati_contracts.kinds import GATI_HANDLER, GATI_MODULE
from gati_contracts.subjects import CR_ROOT, TRAFFIC_ROOT, object_filter
from gati_runtime.cancellation import run_all
from gati_runtime.kube_api import Kube
from gati_runtime.kube_config import kube_configuration
from gati_runtime.lease import Leases
from gati_runtime.provisioning import ConsumerSpec
from gati_runtime.service import ServiceContext
from gati_scaler.options import ScalerOptions
from gati_scaler.scaler import LEASE_SCOPE, Scaler

CONSUMER: Final = ConsumerSpec(
    durable="scaler",
    filter_subjects=(
        object_filter(CR_ROOT, GATI_HANDLER.kind),
        object_filter(CR_ROOT, GATI_MODULE.kind),
    ),
    description="scaler: handler and module specs (scaling modes)",
)
TRAFFIC_CONSUMER: Final = ConsumerSpec(
    durable="scaler-traffic",
    filter_subjects=(f"{TRAFFIC_ROOT}.>",),
    description="scaler: checks traffic samples and claims their handlers",
)


def decode_change(payload: bytes) -> ChangeEvent:
    return decode_event(payload, ChangeEvent)


def decode_sample(payload: bytes) -> TrafficSample:
    return decode_event(payload, TrafficSample)


async def main(ctx: ServiceContext) -> None:
    options = ScalerOptions.from_env(os.environ)
    with client.ApiClient(kube_configuration(ctx.settings.kube_context)) as api:
        kube = Kube(api)
        try:
            scaler = Scaler(
                kube,
                ctx.connection,
                ctx.publisher,
                Leases(ctx.connection.client, ctx.settings.instance_id, scope=LEASE_SCOPE),
                options=options,
                stream=ctx.settings.stream,
                metrics_stream=ctx.settings.metrics_stream,
                source=ctx.settings.instance_id,
            )
            changes = ctx.consumer(
                CONSUMER, decode=decode_change, handler=scaler.on_change, on_poison=scaler.on_poison
            )
            samples = ctx.consumer(
                TRAFFIC_CONSUMER,
                decode=decode_sample,
                handler=scaler.on_sample,
                on_poison=scaler.on_poison,
                stream=ctx.settings.metrics_stream,
            )
            await run_all(
                {
                    "changes": changes.run(ctx.stop),
                    "samples": samples.run(ctx.stop),
                    "scaling": scaler.run(ctx.stop),
                }
            )
        finally:
            kube.close()
