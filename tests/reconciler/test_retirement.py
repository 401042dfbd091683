"""What a Decommissioned GatiVersion leaves of its handler's render, and how long an event waits
for a lease, decided without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gati_contracts.conditions import VERSION_DECOMMISSIONED
from gati_contracts.version import DecommissionAction
from gati_contracts.workload import WorkloadPhase
from gati_reconciler.manifests import render
from gati_reconciler.reconcile import LEASE_TTL, MAX_DELIVER, busy_delay
from gati_reconciler.retirement import (
    Retirement,
    retire,
    retired_verdict,
    retirement_of,
    shows_retired,
)
from gati_reconciler.service import CONSUMER
from gati_reconciler.status import next_status
from reconciler.test_manifests import gh

HANDLER_UID = "uid-orders"


def live_handler() -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {"name": "orders", "namespace": "shop", "uid": HANDLER_UID},
    }


def version(
    phase: str = "Decommissioned",
    *,
    action: str | None = "delete",
    handler: str = "orders",
    namespace: str = "shop",
    owner_uid: str | None = HANDLER_UID,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "orders", "namespace": namespace}
    if owner_uid is not None:
        metadata["ownerReferences"] = [
            {"kind": "GatiHandler", "name": handler, "uid": owner_uid, "controller": True}
        ]
    spec: dict[str, Any] = {"versionId": "v1", "handlerRef": {"name": handler}}
    if action is not None:
        spec["decommission"] = {"action": action}
    return {"kind": "GatiVersion", "metadata": metadata, "spec": spec, "status": {"phase": phase}}


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (None, None),
        (version("Active"), None),
        (version("Draining"), None),
        (version(), Retirement("orders", DecommissionAction.DELETE)),
        (version(action=None), Retirement("orders", DecommissionAction.DELETE)),
        (version(action="scaleToZero"), Retirement("orders", DecommissionAction.SCALE_TO_ZERO)),
        (version(action="evaporate"), Retirement("orders", DecommissionAction.DELETE)),
        (version(owner_uid=None), Retirement("orders", DecommissionAction.DELETE)),
        (version(owner_uid="uid-of-an-earlier-orders"), None),
        (version(handler="payments"), None),
        (version(namespace="elsewhere"), None),
    ],
    ids=[
        "no version",
        "active",
        "draining",
        "decommissioned",
        "default action",
        "scale to zero",
        "unknown action removes",
        "user-made version without owner",
        "earlier incarnation",
        "other handler",
        "other namespace",
    ],
)
def test_retirement_of(found: dict[str, Any] | None, expected: Retirement | None) -> None:
    assert retirement_of(live_handler(), found) == expected


def test_a_module_is_never_retired() -> None:
    module = live_handler() | {"kind": "GatiModule"}
    assert retirement_of(module, version()) is None


def test_delete_keeps_only_the_config_map() -> None:
    rendered = render(gh(replicas=3))
    kept = retire(rendered, Retirement("orders", DecommissionAction.DELETE))
    assert [obj["kind"] for obj in kept] == ["ConfigMap"]


def test_scale_to_zero_keeps_service_and_an_empty_deployment() -> None:
    rendered = render(gh(replicas=3))
    kept = retire(rendered, Retirement("orders", DecommissionAction.SCALE_TO_ZERO))
    assert sorted(obj["kind"] for obj in kept) == ["ConfigMap", "Deployment", "Service"]
    deployment = next(obj for obj in kept if obj["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 0
    original = next(obj for obj in rendered if obj["kind"] == "Deployment")
    assert original["spec"]["replicas"] == 3, "the render itself is left alone"


def test_retired_status_says_why_and_is_recognised() -> None:
    retirement = Retirement("orders", DecommissionAction.DELETE)
    verdict = retired_verdict(retirement)
    assert verdict.phase is WorkloadPhase.PENDING
    assert "GatiVersion orders is Decommissioned" in verdict.message
    status = next_status(None, verdict, generation=1, selector=None, now=datetime.now(UTC))
    assert status is not None
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", VERSION_DECOMMISSIONED)
    assert shows_retired(status)
    assert not shows_retired(None)
    assert not shows_retired({"conditions": [{"type": "Ready", "reason": "DeploymentAvailable"}]})


def test_busy_naks_outlast_a_lease_nobody_releases() -> None:
    """A message naked while its object is leased elsewhere gets MAX_DELIVER - 1 naks; their
    delays together must exceed the TTL, or a crashed holder would get its events dropped."""
    for ttl in (LEASE_TTL, timedelta(seconds=3)):
        delays = [busy_delay(attempt, ttl) for attempt in range(1, MAX_DELIVER)]
        assert sum(delays, timedelta()) > ttl
        assert delays[0] <= timedelta(milliseconds=100), "contention is usually brief"
        assert max(delays) <= ttl / 3
    assert CONSUMER.max_deliver == MAX_DELIVER
