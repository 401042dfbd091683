"""A handler whose GatiVersion is `Decommissioned`: what of its render the reconciler still applies.

Timescape retires an idle superseded version by removing its Deployment and Service (`delete`)
or scaling the Deployment to zero (`scaleToZero`), then records `Decommissioned` in the version's
status. Removing those objects makes the watcher publish their deletion, which would make a
reconciler that only read the handler re-create them at once. So the reconciler treats the
version's decision as part of the desired state, level-triggered like the rest: a retired handler
renders without Deployment, Service and disruption budget (`delete`) or with a Deployment of zero
replicas and no disruption budget (`scaleToZero`), and its status says why it does not run.
Applying that trimmed render also repairs a Deployment re-created in the moment between
timescape's removal and its status write (the version's own change event triggers that pass).

The handler's version is the one timescape creates for it: same namespace, same name, `handlerRef`
naming the handler and, when it has a controller reference, this incarnation's uid; anything else
(a version of a deleted namesake, of another handler) leaves the handler running.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from gati_contracts.conditions import VERSION_DECOMMISSIONED
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER
from gati_contracts.version import DecommissionAction, VersionPhase
from gati_contracts.workload import WorkloadPhase
from gati_reconciler.manifests import POD_DISRUPTION_BUDGET, SERVICE
from gati_reconciler.status import READY, Verdict

_REMOVED_BY: Final[dict[DecommissionAction, frozenset[str]]] = {
    DecommissionAction.DELETE: frozenset(
        {DEPLOYMENT.kind, SERVICE.kind, POD_DISRUPTION_BUDGET.kind}
    ),
    DecommissionAction.SCALE_TO_ZERO: frozenset({POD_DISRUPTION_BUDGET.kind}),
}


@dataclass(frozen=True)
class Retirement:
    """Timescape's decision about a handler's version, as far as its objects are concerned."""

    version: str
    action: DecommissionAction

    @property
    def message(self) -> str:
        gone = (
            "its Deployment and Service are not re-created"
            if self.action is DecommissionAction.DELETE
            else "its Deployment is kept at zero replicas"
        )
        return f"GatiVersion {self.version} is Decommissioned (action {self.action.value}): {gone}"


def retirement_of(
    handler: Mapping[str, Any], version: Mapping[str, Any] | None
) -> Retirement | None:
    """The retirement `version` (the handler's GatiVersion as last seen, None when there is
    none) imposes on `handler` (as the API server returned it), or None when it runs as usual."""
    if version is None or handler.get("kind") != GATI_HANDLER.kind:
        return None
    metadata = handler.get("metadata") or {}
    version_metadata = version.get("metadata") or {}
    spec = version.get("spec") or {}
    status = version.get("status") or {}
    if (
        version_metadata.get("namespace") != metadata.get("namespace")
        or (spec.get("handlerRef") or {}).get("name") != metadata.get("name")
        or status.get("phase") != VersionPhase.DECOMMISSIONED.value
    ):
        return None
    controllers = [
        reference
        for reference in version_metadata.get("ownerReferences") or []
        if reference.get("controller")
    ]
    if any(reference.get("uid") != metadata.get("uid") for reference in controllers):
        return None  # the version of an earlier handler of that name, not yet collected
    action_text = (spec.get("decommission") or {}).get("action", DecommissionAction.DELETE.value)
    try:
        action = DecommissionAction(action_text)
    except ValueError:
        # The API server validates the enum; an unknown value from a newer CRD removes the
        # objects, as timescape's default does, rather than keeping pods nobody routes to.
        action = DecommissionAction.DELETE
    return Retirement(str(version_metadata.get("name")), action)


def retire(rendered: Sequence[dict[str, Any]], retirement: Retirement) -> list[dict[str, Any]]:
    """The part of `rendered` a retired handler keeps, with a scaled-to-zero Deployment."""
    removed = _REMOVED_BY[retirement.action]
    kept = []
    for obj in rendered:
        if obj["kind"] in removed:
            continue
        if obj["kind"] == DEPLOYMENT.kind:
            obj = {**obj, "spec": {**obj["spec"], "replicas": 0}}
        kept.append(obj)
    return kept


def retired_verdict(retirement: Retirement) -> Verdict:
    """Pending, not Running: no pod serves, and none will until a new version is rolled out."""
    return Verdict(WorkloadPhase.PENDING, VERSION_DECOMMISSIONED, retirement.message)


def shows_retired(status: Mapping[str, Any] | None) -> bool:
    """Whether a status written by the reconciler says the handler's version is retired."""
    conditions = (status or {}).get("conditions") or []
    return any(
        condition.get("type") == READY and condition.get("reason") == VERSION_DECOMMISSIONED
        for condition in conditions
    )
