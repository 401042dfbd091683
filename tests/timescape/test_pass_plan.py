"""A whole pass decided from what it read, without servers: the service and the replay share it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gati_contracts.events import RoutesEvent
from gati_contracts.handler import GatiHandler
from gati_contracts.version import GatiVersion, VersionPhase
from gati_timescape.actions import ACTION_ANNOTATION, NONCE_ANNOTATION
from gati_timescape.pass_plan import (
    MAX_TICK,
    DeploymentReplicas,
    NamespacePlan,
    PassVersion,
    PathPlan,
    by_owner,
    health_windows,
    plan_namespace,
    readiness,
)
from gati_timescape.state import VersionState
from timescape.helpers import T0, at, traffic, version_object

ROLLOUT = {
    "steps": [{"weight": 50, "pause": "10s"}, {"weight": 100}],
    "analysis": {"interval": "1s"},
}
PENDING = VersionState()
ACTIVE = VersionState(phase=VersionPhase.ACTIVE, current_weight=100, activated_at=T0)


def handler(name: str, path: str = "/orders", **timescape: Any) -> GatiHandler:
    return GatiHandler.from_wire(
        {
            "apiVersion": "gati.dev/v1alpha1",
            "kind": "GatiHandler",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
            "spec": {
                "handlerPath": path,
                "version": name,
                "image": f"acme/orders:{name}",
                "replicas": 2,
                "timescape": {"rollout": ROLLOUT, **timescape},
            },
        }
    )


def version(
    name: str,
    created: float,
    state: VersionState = PENDING,
    *,
    path: str | None = "/orders",
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> PassVersion:
    wire = version_object(name, at(created), **(spec or {}))
    wire["metadata"]["annotations"] = annotations or {}
    if status:
        wire["status"] = status
    obj = GatiVersion.from_wire(wire)
    return PassVersion(obj, handler(name, path) if path else None, state)


def ready(name: str, ready: int, desired: int = 2) -> DeploymentReplicas:
    labels = {"gati.dev/kind": "gatihandler", "gati.dev/owner": name}
    return DeploymentReplicas(labels, desired=desired, ready=ready)


def only_path(plan: NamespacePlan) -> PathPlan:
    [path] = plan.paths
    return path


def table(path: PathPlan) -> RoutesEvent:
    assert isinstance(path.table, RoutesEvent)
    return path.table


def weights(path: PathPlan) -> dict[str, int]:
    return {v.version_id: v.weight for v in table(path).versions if v.weight}


def actions(path: PathPlan) -> dict[str, list[str]]:
    return {v.name: [o.action for o in v.outcomes] for v in path.versions}


def test_the_target_takes_its_first_step_and_the_table_follows() -> None:
    versions = [version("v2", 5), version("v1", 0, ACTIVE)]
    plan = plan_namespace(
        "shop", versions, at(10), deployments=[ready("v2", 2)], source="timescape-0"
    )
    path = only_path(plan)
    assert [v.name for v in path.versions] == ["v1", "v2"]
    assert actions(path) == {"v1": [], "v2": ["rollout-step"]}
    assert weights(path) == {"v1": 50, "v2": 50}
    assert table(path).source == "timescape-0"
    # The next health check (every 1 s) comes before the end of the 10 s pause.
    assert plan.wake == path.wake == at(11)


def test_the_target_is_judged_on_its_deployments_and_its_windows_samples() -> None:
    checked = VersionState(last_check_at=at(9))  # a check falls due at 10 s
    versions = [version("v1", 0, ACTIVE), version("v2", 5, checked)]
    for deployments in ([ready("v2", 1)], []):
        path = only_path(plan_namespace("shop", versions, at(10), deployments=deployments))
        assert [o.reason for o in path.versions[1].outcomes] == ["NotReady"]
    failing = {"v2": [traffic(9.5, 100, errors=50)]}
    path = only_path(
        plan_namespace("shop", versions, at(10), deployments=[ready("v2", 2)], samples=failing)
    )
    assert [o.reason for o in path.versions[1].outcomes] == ["LowSuccessRate"]
    stale = {"v2": [traffic(8, 100, errors=50)]}
    path = only_path(
        plan_namespace("shop", versions, at(10), deployments=[ready("v2", 2)], samples=stale)
    )
    assert actions(path)["v2"] == ["rollout-step"]


def test_readiness_counts_the_handlers_deployments_or_none_ready_before_they_exist() -> None:
    v2 = version("v2", 0)
    others = ready("v1", 2)
    assert readiness([others, ready("v2", 1), ready("v2", 2, desired=3)], v2) == (3, 5)
    assert readiness([others], v2) == (0, 2)
    assert readiness([], version("v3", 0, path=None)) == (0, 0)
    wire = {"metadata": {"labels": others.labels}, "spec": {"replicas": 2}, "status": {}}
    assert DeploymentReplicas.from_wire(wire) == ready("v1", 0)


def test_deployments_are_found_by_their_owner_label_and_unlabelled_ones_are_no_ones() -> None:
    unlabelled = DeploymentReplicas({"app": "v2"}, desired=1, ready=1)
    owned = by_owner([ready("v1", 1), unlabelled, ready("v2", 1), ready("v2", 2, desired=3)])
    assert owned == {"v1": [ready("v1", 1)], "v2": [ready("v2", 1), ready("v2", 2, desired=3)]}


def test_health_windows_name_exactly_the_versions_the_pass_judges() -> None:
    asked = {ACTION_ANNOTATION: "abort"}  # no nonce: refused without reading anything
    broken = {"rollout": {"steps": [{"weight": 100}], "analysis": {"interval": "0s"}}}
    versions = [
        version("v0", 0, VersionState(phase=VersionPhase.ROLLED_BACK), annotations=asked),
        version("v1", 1, ACTIVE),
        version("v2", 2),
        version("w1", 0, path="/other", spec=broken),
    ]
    assert health_windows("shop", versions, at(10)) == {"v2": at(9)}
    plan = plan_namespace("shop", versions, at(10), deployments=[ready("v2", 2)])
    orders, other = plan.paths
    assert (orders.path, other.path) == ("/orders", "/other")
    assert actions(orders) == {"v0": ["rollout-action"], "v1": [], "v2": ["rollout-step"]}
    [invalid] = other.versions[0].outcomes
    assert (invalid.reason, "rollout.analysis.interval" in invalid.message) == (
        "InvalidRollout",
        True,
    )


def test_a_pending_version_without_handler_or_rollout_answers_an_action() -> None:
    asked = {ACTION_ANNOTATION: "promote", NONCE_ANNOTATION: "n-1"}
    orphan = version("v1", 0, path=None, annotations=asked, status={"handlerPath": "/orders"})
    unplaced = version("v9", 0, path=None)
    path = only_path(plan_namespace("shop", [orphan, unplaced], at(10)))
    [answer] = path.versions
    assert [o.reason for o in answer.outcomes] == ["ActionNotApplicable"]
    assert answer.state.handled_action == "n-1"
    # Still in flight: the namespace is re-read within a tick even without a deadline.
    assert path.wake == at(10) + MAX_TICK
    assert health_windows("shop", [orphan], at(10)) == {}


def test_an_idle_draining_version_goes_only_when_no_pod_is_unavailable() -> None:
    quick = {"decommission": {"graceSeconds": 5, "idleSamples": 1}}
    draining = VersionState(
        phase=VersionPhase.DRAINING, activated_at=T0, draining_since=at(1), reason="Replaced"
    )
    later = VersionState(
        phase=VersionPhase.ACTIVE, current_weight=100, activated_at=T0 + timedelta(seconds=1)
    )
    versions = [version("v1", 0, draining, spec=quick), version("v2", 1, later)]
    idle = [traffic(9, 0, version="v1")]
    held = only_path(
        plan_namespace("shop", versions, at(10), deployments=[ready("v1", 1)], arrived=idle)
    )
    assert (held.versions[0].state.phase, held.versions[0].decommission) == (
        VersionPhase.DRAINING,
        False,
    )
    gone = only_path(
        plan_namespace("shop", versions, at(10), deployments=[ready("v1", 2)], arrived=idle)
    )
    assert actions(gone) == {"v1": ["decommissioned"], "v2": []}
    assert gone.versions[0].decommission
    assert weights(gone) == {"v2": 100}
    assert gone.wake is None
