"""Renders are immutable and shared (`gati_reconciler.manifests`): no step of a reconcile, and
nothing that takes a render apart, changes a render another reconcile or render holds."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from gati_contracts.handler import GatiHandler
from gati_contracts.objects import parse_object
from gati_contracts.version import DecommissionAction
from gati_reconciler.manifests import render
from gati_reconciler.retirement import Retirement, retire
from gati_runtime.nats_connection import NatsConnection
from gati_watcher.watcher import Watcher
from reconciler.harness import Workloads, handler, outcomes, running_reconciler
from reconciler.test_manifests import gh


@pytest.mark.parametrize("action", list(DecommissionAction))
def test_retiring_a_render_leaves_it_as_rendered(action: DecommissionAction) -> None:
    rendered = render(gh(replicas=2))
    frozen = json.dumps(rendered)
    kept = retire(rendered, Retirement("v1", action))
    assert all(obj["spec"]["replicas"] == 0 for obj in kept if obj["kind"] == "Deployment")
    assert json.dumps(rendered) == frozen
    assert json.dumps(render(gh(replicas=2))) == frozen


async def test_reconciles_leave_the_renders_they_share_as_rendered(
    gati_api: client.ApiClient,
    gati_connection: NatsConnection,
    workloads: Workloads,
    watcher: Watcher,
) -> None:
    """The reconciler renders in this process, so its renders share their unchanged parts with
    one taken here before it starts: applying, pruning, status writes and the render cache's
    reuse across a spec change and a scale-down must leave that render as it was."""
    ns = workloads.namespace
    resource = parse_object(workloads.create(handler(ns, "users", replicas=2, env={"A": "1"})))
    assert isinstance(resource, GatiHandler)
    first = render(resource)
    frozen = json.dumps(first)
    async with outcomes(gati_connection) as seen, running_reconciler(gati_api, gati_connection):
        await seen.phase("users", "Running", generation=1)
        for spec in ({"image": "acme/u:2", "env": {"A": "2"}}, {"replicas": 1}):
            changed = workloads.patch_spec("GatiHandler", "users", spec)
            await seen.phase("users", "Running", generation=changed["metadata"]["generation"])
    assert json.dumps(first) == frozen
    assert json.dumps(render(resource)) == frozen
    container = workloads.deployment("users")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "acme/u:2"
