"""Admission passes a custom resource's untouched fields through without walking them again.

A status write carries the stored spec and an update the stored status; pruning, defaulting
and validating those again changes nothing, so admission keeps them as stored (the same
objects) as long as they were admitted under the schema still in force.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gati_kubesim import crds
from gati_kubesim.admission import Admission
from gati_kubesim.api import WriteOptions
from gati_kubesim.errors import ApiError
from gati_kubesim.registry import ResourceType
from gati_kubesim.server import KubeSim
from kubesim.samples import handler, handler_crd


def _rt(crd: dict[str, Any] | None = None) -> ResourceType:
    return crds.resource_types(crd or handler_crd())[0]


def test_a_status_write_keeps_the_stored_spec_and_still_checks_the_status() -> None:
    admission, rt = Admission(), _rt()
    stored = admission.admit(rt, handler("web", "default"), None)
    written = {**stored, "status": {"phase": "Running", "bogus": 1}}
    result = admission.admit(rt, written, stored)
    assert result["spec"] is stored["spec"]
    assert result["status"] == {"phase": "Running"}  # pruned, as before
    with pytest.raises(ApiError) as info:
        admission.admit(rt, {**stored, "status": {"phase": 3}}, stored)
    assert "status.phase" in str(info.value.status())


def test_a_changed_spec_is_admitted_in_full() -> None:
    admission, rt = Admission(), _rt()
    stored = admission.admit(rt, handler("web", "default"), None)
    changed = {**stored, "spec": {"handlerPath": "/x", "unknown": True}}
    result = admission.admit(rt, changed, stored)
    assert result["spec"] == {"handlerPath": "/x", "replicas": 1}


def test_the_memory_stays_bounded_and_keeps_the_newest_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gati_kubesim.admission._ADMITTED_MAX", 8)
    admission, rt = Admission(), _rt()
    first = admission.admit(rt, handler("first", "default"), None)
    stored = [admission.admit(rt, handler(f"h{i}", "default"), None) for i in range(20)]
    assert len(admission._admitted) <= 8
    newest = stored[-1]
    assert admission.admit(rt, dict(newest), newest)["spec"] is newest["spec"]
    again = admission.admit(rt, dict(first), first)  # forgotten: admitted anew, same value
    assert again["spec"] == first["spec"]
    assert again["spec"] is not first["spec"]


def test_fields_admitted_under_another_schema_are_admitted_again() -> None:
    admission, old_rt = Admission(), _rt()
    stored = admission.admit(old_rt, handler("web", "default"), None)
    crd = handler_crd()
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    del schema["properties"]["spec"]["properties"]["replicas"]
    new_rt = _rt(crd)
    result = admission.admit(new_rt, copy.copy(stored), stored)
    assert "replicas" not in result["spec"]  # pruned under the new schema


def test_labels_a_write_sends_anew_are_checked_and_the_stored_ones_are_not_rechecked() -> None:
    admission, rt = Admission(), _rt()
    stored = admission.admit(rt, handler("web", "default"), None)
    bad = {"bad key!": "v"}
    fresh = {**stored, "metadata": {**stored["metadata"], "labels": bad}}
    with pytest.raises(ApiError) as info:
        admission.admit(rt, fresh, stored)
    assert "metadata.labels" in str(info.value.status())
    # The stored object's own labels dict was checked when it was stored and is never
    # mutated, so a write that carries it along (a status write) is not charged for it.
    planted = {**stored, "metadata": {**stored["metadata"], "labels": bad}}
    again = {**planted, "metadata": dict(planted["metadata"])}
    assert admission.admit(rt, again, planted)["metadata"]["labels"] is bad


def _leaves(value: Any, path: str = "") -> dict[str, int]:
    """Every container of a JSON value by path, with its identity."""
    out = {path: id(value)}
    if isinstance(value, dict):
        for key, child in value.items():
            out |= _leaves(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out |= _leaves(child, f"{path}[{index}]")
    return out if isinstance(value, dict | list) else {}


@pytest.mark.parametrize(
    ("plural", "group", "body"),
    [
        ("services", "", {"spec": {"ports": [{"port": 80}]}}),
        ("namespaces", "", {}),
        (
            "deployments",
            "apps",
            {
                "spec": {
                    "selector": {"matchLabels": {"app": "a"}},
                    "template": {
                        "metadata": {"labels": {"app": "a"}},
                        "spec": {"containers": [{"name": "a", "image": "a"}]},
                    },
                }
            },
        ),
    ],
)
def test_a_status_write_never_writes_into_the_stored_object(
    plural: str, group: str, body: dict[str, Any]
) -> None:
    """Reads, watch events and identity caches share stored objects: built-in defaulting
    must leave the spec a status write carries along exactly as it was stored."""
    api = KubeSim().api
    api.create(
        api.resource("", "v1", "namespaces"), "", {"metadata": {"name": "ns"}}, WriteOptions("t")
    )
    rt = api.resource(group, "v1", plural)
    namespace = "ns" if rt.namespaced else ""
    created = api.create(rt, namespace, {"metadata": {"name": "s"}, **body}, WriteOptions("t"))
    stored = api.store.get(rt, namespace, "s")
    before, shape = copy.deepcopy(stored), _leaves(stored)
    written = {**created, "status": {"observedGeneration": 1}}
    api.update(rt, namespace, "s", "status", written, WriteOptions("t"))
    assert stored == before
    assert _leaves(stored) == shape
