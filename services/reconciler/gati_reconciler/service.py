"""`gati-operator run reconciler`: every replica pulls from the shared durable `reconciler`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final

from kubernetes import client

from gati_contracts.events import ChangeEvent, decode_event
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_MODULE, GATI_VERSION
from gati_contracts.subjects import CR_ROOT, OWNED_ROOT, object_filter
from gati_reconciler.reconcile import LEASE_SCOPE, MAX_DELIVER, Reconciler
from gati_reconciler.stream_state import StreamState
from gati_reconciler.targets import (
    TARGET_ENV,
    DryRunTarget,
    GitOpsTarget,
    KubernetesTarget,
    Target,
    TargetName,
)
from gati_runtime.consumer import ConsumerOptions
from gati_runtime.heap import settle_heap
from gati_runtime.kube_api import Kube
from gati_runtime.kube_config import kube_configuration
from gati_runtime.lease import Leases
from gati_runtime.outcomes import Backoff
from gati_runtime.provisioning import ConsumerSpec
from gati_runtime.service import ServiceContext

DURABLE: Final = "reconciler-stream"
CONSUMER: Final = ConsumerSpec(
    durable=DURABLE,
    filter_subjects=(
        object_filter(CR_ROOT, GATI_HANDLER.kind),
        object_filter(CR_ROOT, GATI_MODULE.kind),
        object_filter(CR_ROOT, GATI_VERSION.kind),
        object_filter(OWNED_ROOT, DEPLOYMENT.kind),
    ),
    max_deliver=MAX_DELIVER,
    description="reconciler: handlers and modules into Deployments, Services and status",
    filter_on_server=False,
    succeeds="reconciler",
)
"""Filtered in this process, not by nats-server: the reconciler trails the watcher by thousands
of messages during a wave, where a durable with these four filters cost the server a walk of a
message block's subjects per delivery (~100 us of CPU more than a sequential read; see
`ConsumerSpec.filter_on_server`), and most of the stream is the reconciler's anyway; the rest
(its own outcomes, routes) is acked unread. A durable of its own, succeeding the filtered one:
replicas of an older release still pull from that one during a rollout, and would take these
other subjects for poison."""
OPTIONS: Final = ConsumerOptions(
    backoff=Backoff(base=timedelta(milliseconds=250), cap=timedelta(seconds=30)), coalesce=True
)
"""A transient API failure is usually over within seconds; a 30 s cap keeps a long outage from
pushing the next attempt minutes past recovery. Coalescing: a reconcile acts on the newest
recorded state of what an event names (an owner's or Deployment's event only while it is the
newest of its subject, a GatiVersion's through its latest change), so an event with a later one
of its subject already queued here is settled without the decode, the read and the lease."""


GITOPS_TREE_ENV: Final = "GATI_GITOPS_TREE"
KUBE_WORKERS: Final = OPTIONS.max_in_flight // 8
"""API calls in flight at once: beyond this the API server, not the reconciler, sets the pace."""


def decode_change(payload: bytes) -> ChangeEvent:
    return decode_event(payload, ChangeEvent)


def choose_target(kube: Kube, environ: Mapping[str, str]) -> Target:
    """The target `GATI_RECONCILER_TARGET` names; a bad value stops start-up naming the fix."""
    value = environ.get(TARGET_ENV, TargetName.KUBERNETES.value)
    try:
        name = TargetName(value)
    except ValueError:
        choices = ", ".join(t.value for t in TargetName)
        raise ValueError(f"{TARGET_ENV}={value!r}: choose one of {choices}") from None
    if name is TargetName.GITOPS:
        tree = environ.get(GITOPS_TREE_ENV)
        if not tree:
            raise ValueError(f"{TARGET_ENV}=gitops needs {GITOPS_TREE_ENV}, a git working tree")
        return GitOpsTarget(Path(tree))
    if name is TargetName.DRY_RUN:
        return DryRunTarget(kube)
    return KubernetesTarget(kube)


async def main(ctx: ServiceContext) -> None:
    configuration = kube_configuration(ctx.settings.kube_context)
    with client.ApiClient(configuration) as api:
        kube = Kube(api, workers=KUBE_WORKERS)
        try:
            reconciler = Reconciler(
                kube,
                ctx.publisher,
                streams=StreamState(ctx.connection.client, ctx.settings.stream),
                leases=Leases(ctx.connection.client, ctx.settings.instance_id, scope=LEASE_SCOPE),
                target=choose_target(kube, os.environ),
                source=ctx.settings.instance_id,
                stream=ctx.settings.stream,
            )
            loop = ctx.consumer(
                CONSUMER,
                decode=decode_change,
                handler=reconciler.handle,
                on_poison=reconciler.on_poison,
                options=OPTIONS,
            )
            settle_heap()
            await loop.run(ctx.stop)
        finally:
            kube.close()
