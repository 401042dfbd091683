"""Each service, run as deployed with its own service account, calls only what its ClusterRole in
`deploy/overlays/production` grants, and uses every grant.

The services are real `gati-operator run` processes against kubesim and nats-server, driven
through a whole life: a handler and a module created and updated, a v2 rollout to 100 %, the
idle v1 decommissioned, a scaling change with traffic, and everything deleted. Every wait is
for an outcome or routing table the services publish, never a sleep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deploy.rbac import Rule, check, rules_by_service
from deploy.rendering import needs_kubectl, render
from deploy.services import identities, running_services, service_account
from fixtures.kubesim_server import api_client, install_gati_crds, scratch_namespace
from gati_contracts.events import (
    OutcomeEvent,
    RoutesEvent,
)
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.nats_connection import NatsConnection
from reconciler.harness import Outcomes, Workloads, handler, module, outcomes
from timescape.running import routes, weights
from timescape.test_service import STARTING_CHECKS, quick_decommission, send_traffic

SERVICES = ("watcher", "reconciler", "scaler", "timescape")
ADMIN = "token-admin"
FAST_ROLLOUT: dict[str, Any] = {
    "steps": [{"weight": 10, "pause": "1s"}, {"weight": 100}],
    "analysis": {"interval": "1s", "failureThreshold": STARTING_CHECKS},
}
# users-v1's objects are deleted when it is decommissioned, orders-v1's scaled to zero.
DECOMMISSION = {"users": "delete", "orders": "scaleToZero"}

# Grants a correct run may not reach, each with why it is kept; any other unused grant is an
# error. (Events need no entry: the reconciler posts one on every create and update too.)
_RETIRED_RACE = (
    "a retired handler's prune removes the Deployment or Service the reconciler re-created "
    "between timescape's removal and its Decommissioned status write; reached only in that race"
)
_STREAM_TRAILS = (
    "the reconciler takes handlers and modules from the stream; it reads one from the API "
    "server only when the stream trails (a status write that conflicts, a Deployment's event "
    "before another replica's status write is recorded) or to mark an abandoned reconcile"
)
SOMETIMES_UNUSED: dict[str, dict[Rule, str]] = {
    "reconciler": {
        Rule("apps", "deployments", "delete"): _RETIRED_RACE,
        Rule("", "services", "delete"): _RETIRED_RACE,
        Rule("gati.dev", "gatihandlers", "get"): _STREAM_TRAILS,
        Rule("gati.dev", "gatimodules", "get"): _STREAM_TRAILS,
    },
    "timescape": {
        Rule("gati.dev", "gativersions", "delete"): (
            "decommissioned records of a path beyond GATI_DECOMMISSIONED_RETENTION (default 20) "
            "whose handler is gone but which garbage collection left (no controller reference)"
        ),
    },
}


@pytest.fixture
def recording_kubesim() -> Iterator[ThreadedKubeSim]:
    with ThreadedKubeSim(
        token=ADMIN, users=identities(SERVICES), ready_after=0.05, bookmark_interval=0.2
    ) as sim:
        yield sim


@pytest.fixture
def admin(recording_kubesim: ThreadedKubeSim) -> Iterator[client.ApiClient]:
    with api_client(recording_kubesim.url, ADMIN, recording_kubesim.sim.ca_file) as api:
        install_gati_crds(api)
        yield api


def app_handler(namespace: str, app: str, version_id: str) -> dict[str, Any]:
    return handler(
        namespace,
        f"{app}-{version_id}",
        handlerPath=f"/api/{app}",
        version=version_id,
        image=f"acme/{app}:{version_id}",
        timescape={"rollout": FAST_ROLLOUT},
    )


def serving(app: str, version_id: str, table: RoutesEvent) -> bool:
    return table.path == f"/api/{app}" and weights(table) == {version_id: 100}


def did(action: str, *names: str) -> Callable[[list[OutcomeEvent]], bool]:
    def done(events: list[OutcomeEvent]) -> bool:
        return all(any(e.action == action and e.name == n for e in events) for n in names)

    return done


async def full_life(workloads: Workloads, connection: NatsConnection, seen: Outcomes) -> None:
    ns = workloads.namespace
    async with routes(connection) as tables:
        for app in DECOMMISSION:
            workloads.create(quick_decommission(ns, f"{app}-v1", "v1", DECOMMISSION[app]))
            workloads.create(app_handler(ns, app, "v1"))
        workloads.create(module(ns, "auth"))
        for app in DECOMMISSION:
            await tables.until(partial(serving, app, "v1"))
        await seen.phase("auth", "Running")

        workloads.patch_spec("GatiHandler", "users-v1", {"env": {"LOG_LEVEL": "debug"}})
        await seen.phase("users-v1", "Running", generation=2)
        # Two replicas bring a PodDisruptionBudget, one again prunes it.
        for generation, replicas in ((2, 2), (3, 1)):
            workloads.patch_spec("GatiModule", "auth", {"replicas": replicas})
            await seen.phase("auth", "Running", generation=generation)

        for app in DECOMMISSION:
            workloads.create(app_handler(ns, app, "v2"))
        for app in DECOMMISSION:
            await tables.until(partial(serving, app, "v2"))

    for app in DECOMMISSION:
        await send_traffic(connection, ns, f"/api/{app}", "v1", requests=0)
    await seen.wait_for(did("decommissioned", "users-v1", "orders-v1"))

    # The scaler applies an HPA in mode hpa, deletes it when the mode moves on, and in mode
    # events scales the Deployment on traffic.
    hpa = {"mode": "hpa", "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilization": 70}
    workloads.patch_spec(
        "GatiHandler", "users-v2", {"scaling": hpa, "resources": {"requests": {"cpu": "100m"}}}
    )
    await seen.wait_for(did("hpa-applied", "users-v2"))
    events = {"mode": "events", "minReplicas": 1, "maxReplicas": 4, "targetRequestsPerReplica": 5}
    workloads.patch_spec("GatiHandler", "users-v2", {"scaling": events})
    await seen.wait_for(did("hpa-deleted", "users-v2"))
    await send_traffic(connection, ns, "/api/users", "v2", requests=200)
    await seen.wait_for(did("scaled", "users-v2"))

    for kind, name in (("GatiModule", "auth"), ("GatiHandler", "users-v1")):
        workloads.delete(kind, name)
    await seen.wait_for(did("deleted", "auth", "users-v1"))


@needs_kubectl
@pytest.mark.timeout(300)  # four processes through a whole life; ~40 s on an idle 2-core machine
async def test_each_service_calls_exactly_what_its_cluster_role_grants(
    recording_kubesim: ThreadedKubeSim,
    admin: client.ApiClient,
    gati_connection: NatsConnection,
    nats_url: str,
    tmp_path: Path,
) -> None:
    rules = rules_by_service(render("production"), SERVICES)
    with (
        scratch_namespace(admin, "shop") as namespace,
        running_services(recording_kubesim.sim, SERVICES, nats_url, tmp_path) as services,
    ):
        async with outcomes(gati_connection) as seen:
            try:
                await full_life(Workloads(admin, namespace), gati_connection, seen)
            except TimeoutError:
                print(services.log_tail(lines=80))
                raise
    calls = list(recording_kubesim.sim.access_log)
    problems = []
    for service in SERVICES:
        mine = [(c.method, c.url) for c in calls if c.user == service_account(service)]
        assert mine, f"{service} made no API call"
        verdict = check(rules[service], mine)
        unused = set(verdict.unused) - SOMETIMES_UNUSED.get(service, {}).keys()
        problems += [f"{service} denied {r.verb} {r.path}" for r in verdict.denied]
        problems += [f"{service} never used {r.verb} {r.group}/{r.resource}" for r in unused]
    assert not problems, "\n".join(sorted(set(problems)))
