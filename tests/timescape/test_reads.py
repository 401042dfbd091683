"""A list answer decodes into just what a pass uses, reading absent fields as the typed client
did, and a field of the wrong type is refused naming it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gati_timescape import reads
from gati_timescape.pass_plan import DeploymentReplicas

LABELS = {"gati.dev/kind": "gatihandler", "gati.dev/owner": "users"}


def listed(*items: dict[str, Any]) -> bytes:
    return json.dumps(
        {"kind": "List", "metadata": {"resourceVersion": "7"}, "items": items}
    ).encode()


def test_a_deployment_keeps_its_labels_replicas_and_ready_replicas_only() -> None:
    full = {
        "metadata": {"name": "users", "labels": LABELS, "managedFields": [{"manager": "x"}]},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app"}]}}},
        "status": {"readyReplicas": 2, "replicas": 3, "conditions": []},
    }
    assert reads.deployments(listed(full)) == [DeploymentReplicas(LABELS, desired=3, ready=2)]


def test_a_deployment_without_status_labels_or_replicas_reads_as_none_ready() -> None:
    bare: dict[str, Any] = {"metadata": {"name": "users"}, "spec": {"replicas": None}}
    assert reads.deployments(listed(bare, {})) == [DeploymentReplicas({}, 0, 0)] * 2
    assert reads.deployments(b'{"items": null}') == []


def test_a_field_of_the_wrong_type_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"items\[0\]\.status\.readyReplicas"):
        reads.deployments(listed({"status": {"readyReplicas": "two"}}))


def test_custom_objects_come_back_whole_one_at_a_time() -> None:
    version = {"metadata": {"name": "users-v1"}, "spec": {"versionId": "v1"}, "status": {}}
    assert list(reads.objects(listed(version, version))) == [version, version]
    assert list(reads.objects(b"{}")) == []
    not_an_object = reads.objects(listed(version, [1]))  # type: ignore[arg-type]
    assert next(not_an_object) == version
    with pytest.raises(ValueError, match=r"Expected `object`"):
        next(not_an_object)


def test_a_version_never_reconciled_is_pending() -> None:
    moving = {"metadata": {"namespace": "a"}, "status": {"phase": "Canary"}}
    fresh = {"metadata": {"namespace": "b"}}
    assert reads.version_phases(listed(moving, fresh, {})) == [
        ("a", "Canary"),
        ("b", "Pending"),
        (None, "Pending"),
    ]
