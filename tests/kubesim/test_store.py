"""Store rules without HTTP: resourceVersion, generation, no-op writes, finalizers, events."""

from __future__ import annotations

from typing import Any

import pytest

from gati_kubesim.errors import ApiError
from gati_kubesim.registry import BUILTINS, ResourceType
from gati_kubesim.store import Store
from gati_kubesim.watch import WatchEvent

DEPLOY = next(rt for rt in BUILTINS if rt.plural == "deployments")
CM = next(rt for rt in BUILTINS if rt.plural == "configmaps")


def _store() -> tuple[Store, list[tuple[str, int]]]:
    store = Store()
    seen: list[tuple[str, int]] = []

    def listen(rt: ResourceType, ev: WatchEvent) -> None:
        seen.append((ev.type, ev.rv))

    store.listeners.append(listen)
    return store, seen


def _deploy(**spec: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"replicas": 1, **spec},
        "status": {},
    }


def test_generation_tracks_spec_not_metadata_or_status() -> None:
    store, _ = _store()
    made = store.create(DEPLOY, _deploy())
    assert made["metadata"]["generation"] == 1
    relabel = {**made, "metadata": {**made["metadata"], "labels": {"a": "b"}}}
    assert store.replace(DEPLOY, relabel)["metadata"]["generation"] == 1
    live = store.get(DEPLOY, "ns", "d")
    status = {**live, "status": {"replicas": 3}}
    assert store.replace(DEPLOY, status)["metadata"]["generation"] == 1
    live = store.get(DEPLOY, "ns", "d")
    scaled = {**live, "spec": {"replicas": 5}}
    assert store.replace(DEPLOY, scaled)["metadata"]["generation"] == 2


def test_stale_resource_version_is_a_conflict() -> None:
    store, _ = _store()
    made = store.create(CM, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}})
    store.replace(CM, {**made, "data": {"a": "1"}})
    with pytest.raises(ApiError) as err:
        store.replace(CM, {**made, "data": {"a": "2"}})
    assert (err.value.code, err.value.reason) == (409, "Conflict")


def test_no_op_write_emits_nothing_and_keeps_the_version() -> None:
    store, seen = _store()
    made = store.create(CM, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}})
    same = store.replace(CM, dict(made, metadata=dict(made["metadata"])))
    assert same["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    assert [t for t, _ in seen] == ["ADDED"]


def test_only_managed_fields_may_differ_in_a_no_op_write() -> None:
    store, seen = _store()
    made = store.create(CM, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}})
    rv = made["metadata"]["resourceVersion"]
    stamped = {**made, "metadata": {**made["metadata"], "managedFields": [{"manager": "m"}]}}
    assert store.replace(CM, stamped)["metadata"]["resourceVersion"] == rv
    labelled = {**made, "metadata": {**made["metadata"], "labels": {"a": "b"}}}
    assert store.replace(CM, labelled)["metadata"]["resourceVersion"] != rv
    live = store.get(CM, "ns", "c")
    with_data = {**live, "data": {}}
    assert (
        store.replace(CM, with_data)["metadata"]["resourceVersion"]
        != live["metadata"]["resourceVersion"]
    )
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "MODIFIED"]


def test_finalizers_hold_then_release() -> None:
    store, seen = _store()
    store.create(
        CM,
        {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns", "finalizers": ["x/y"]}},
    )
    result = store.delete(CM, "ns", "c")
    assert not result.removed
    assert result.obj["metadata"]["deletionTimestamp"]
    held = store.get(CM, "ns", "c")
    released = {**held, "metadata": {**held["metadata"], "finalizers": []}}
    store.replace(CM, released)
    assert store.find(CM, "ns", "c") is None
    assert [t for t, _ in seen] == ["ADDED", "MODIFIED", "DELETED"]
    rvs = [rv for _, rv in seen]
    assert rvs == sorted(rvs)


def test_stored_objects_are_never_mutated_by_later_writes() -> None:
    store, _ = _store()
    made = store.create(CM, {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}})
    snapshot = repr(made)
    store.replace(CM, {**made, "metadata": dict(made["metadata"]), "data": {"a": "1"}})
    store.delete(CM, "ns", "c")
    assert repr(made) == snapshot
