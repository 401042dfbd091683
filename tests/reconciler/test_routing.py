"""Which resource an event is about, and which events are only echoes of status writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gati_contracts.events import ChangeEvent, ChangeType
from gati_contracts.kinds import GATI_HANDLER, GATI_MODULE
from gati_contracts.subjects import (
    ObjectSubject,
    SubjectError,
    cr_subject,
    owned_subject,
    parse_subject,
    routes_subject,
)
from gati_reconciler.reconcile import is_status_echo, object_subject, owner_of
from gati_reconciler.targets import Owner


def event(obj: dict[str, Any], change: ChangeType = ChangeType.MODIFIED) -> ChangeEvent:
    return ChangeEvent.of(change, obj, source="t", observed_at=datetime.now(UTC))


def resource(generation: int, observed: int | None, kind: str = "GatiHandler") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "users", "namespace": "shop", "uid": "u1", "resourceVersion": "7"},
    }
    obj["metadata"]["generation"] = generation
    if observed is not None:
        obj["status"] = {"observedGeneration": observed}
    return obj


def deployment(owner_kind: str | None) -> dict[str, Any]:
    references = (
        [{"kind": owner_kind, "name": "users", "uid": "u1", "controller": True}]
        if owner_kind
        else []
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "users-v1",
            "namespace": "shop",
            "uid": "d1",
            "resourceVersion": "9",
            "ownerReferences": references,
        },
    }


def subject(name: str) -> ObjectSubject:
    parsed = parse_subject(name)
    assert isinstance(parsed, ObjectSubject)
    return parsed


def test_a_resource_event_is_about_the_resource() -> None:
    on = subject(cr_subject("GatiModule", "shop", "users"))
    assert owner_of(event(resource(1, None, "GatiModule")), on) == Owner(
        GATI_MODULE, "shop", "users"
    )


def test_a_deployment_event_is_about_its_controller() -> None:
    on = subject(owned_subject("Deployment", "shop", "users-v1"))
    assert owner_of(event(deployment("GatiHandler")), on) == Owner(GATI_HANDLER, "shop", "users")
    assert owner_of(event(deployment(None)), on) is None
    assert owner_of(event(deployment("ReplicaSet")), on) is None


def test_a_version_event_is_about_the_handler_it_references() -> None:
    on = subject(cr_subject("GatiVersion", "shop", "users-v2"))
    version = resource(1, None, "GatiVersion") | {"spec": {"handlerRef": {"name": "users"}}}
    assert owner_of(event(version), on) == Owner(GATI_HANDLER, "shop", "users")
    assert owner_of(event(resource(1, None, "GatiVersion")), on) is None, "no handlerRef"


def test_status_echoes() -> None:
    assert is_status_echo(event(resource(3, 3)))
    assert not is_status_echo(event(resource(3, 2))), "a spec change waits to be applied"
    assert not is_status_echo(event(resource(3, None))), "never reconciled"
    assert not is_status_echo(event(resource(3, 3), ChangeType.DELETED))


def test_a_delivery_subject_is_read_once_and_garbage_every_time() -> None:
    name = owned_subject("Deployment", "shop", "users-v1")
    assert object_subject(name) == parse_subject(name)
    assert object_subject(name) is object_subject(name), "remembered, not parsed again"
    assert object_subject(routes_subject("shop", "/users")) is None, "ours, but no object"
    for _ in range(2):
        with pytest.raises(SubjectError, match="not a gati subject"):
            object_subject("gati.cr.gatihandler.shop")
