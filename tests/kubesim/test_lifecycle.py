"""Status subresource, generation, finalizers, garbage collection, namespace deletion."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubesim.samples import deployment


def gone(read: Callable[[], Any]) -> Callable[[], bool]:
    """A check for `eventually`: the read now answers 404."""

    def check() -> bool:
        try:
            read()
        except ApiException as err:
            return err.status == 404
        return False

    return check


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll a condition the simulated controllers reach asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (AssertionError, ApiException):
            if time.monotonic() > deadline:
                raise
        else:
            if result is not False:
                return result
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_generation_moves_on_spec_changes_only(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    made = apps.create_namespaced_deployment(kube_namespace, deployment("web"))
    assert made.metadata.generation == 1
    labelled = apps.patch_namespaced_deployment(
        "web", kube_namespace, {"metadata": {"labels": {"a": "b"}}}
    )
    assert labelled.metadata.generation == 1
    status = apps.patch_namespaced_deployment_status(
        "web", kube_namespace, {"status": {"replicas": 9}}
    )
    assert status.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", kube_namespace, {"spec": {"replicas": 5}})
    assert scaled.metadata.generation == 2


def test_status_writes_through_main_resource_are_ignored(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        kube_namespace, deployment("web", **{"kubesim.gati.dev/ready-after": "1h"})
    )
    live = eventually(lambda: apps.read_namespaced_deployment("web", kube_namespace))
    before = live.status.observed_generation
    live.status.observed_generation = 42
    live.spec.replicas = 3
    updated = apps.replace_namespaced_deployment("web", kube_namespace, live)
    assert updated.spec.replicas == 3
    assert updated.status.observed_generation != 42
    assert updated.status.observed_generation in (before, None, 1)


def test_spec_writes_through_status_are_ignored(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        kube_namespace, deployment("web", **{"kubesim.gati.dev/ready-after": "1h"})
    )
    result = apps.patch_namespaced_deployment_status(
        "web",
        kube_namespace,
        {"spec": {"replicas": 7}, "metadata": {"labels": {"x": "y"}}, "status": {"replicas": 4}},
    )
    assert result.spec.replicas == 2
    assert result.metadata.labels is None
    assert result.status.replicas == 4


def test_finalizer_holds_deletion_until_removed(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "held", "finalizers": ["example.com/keep"]}}
    )
    core.delete_namespaced_config_map("held", kube_namespace)
    held = core.read_namespaced_config_map("held", kube_namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/keep"]
    core.patch_namespaced_config_map("held", kube_namespace, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("held", kube_namespace)
    assert err.value.status == 404


def _owned_cm(name: str, owner: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": owner.metadata.name,
                    "uid": owner.metadata.uid,
                }
            ],
        }
    }


def test_deleting_an_owner_deletes_its_dependents(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    owner = apps.create_namespaced_deployment(kube_namespace, deployment("owner"))
    core.create_namespaced_config_map(kube_namespace, _owned_cm("dep", owner))
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "bystander"}})
    apps.delete_namespaced_deployment("owner", kube_namespace)

    eventually(gone(lambda: core.read_namespaced_config_map("dep", kube_namespace)))
    assert core.read_namespaced_config_map("bystander", kube_namespace)


def test_a_dependent_written_after_its_owner_went_is_collected(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    """A controller acting on a stale view re-creates what its deleted owner owned: Kubernetes'
    collector deletes a dependent whose every owner is absent, so kubesim's does too."""
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    owner = apps.create_namespaced_deployment(kube_namespace, deployment("owner"))
    apps.delete_namespaced_deployment("owner", kube_namespace)
    eventually(gone(lambda: apps.read_namespaced_deployment("owner", kube_namespace)))
    core.create_namespaced_config_map(kube_namespace, _owned_cm("late", owner))

    eventually(gone(lambda: core.read_namespaced_config_map("late", kube_namespace)))


def test_foreground_deletion_waits_for_dependents(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    owner = apps.create_namespaced_deployment(kube_namespace, deployment("owner"))
    core.create_namespaced_config_map(
        kube_namespace,
        {
            **_owned_cm("dep", owner),
            "metadata": {**_owned_cm("dep", owner)["metadata"], "finalizers": ["example.com/slow"]},
        },
    )
    apps.delete_namespaced_deployment("owner", kube_namespace, propagation_policy="Foreground")
    eventually(
        lambda: (
            core.read_namespaced_config_map("dep", kube_namespace).metadata.deletion_timestamp
            is not None
        )
    )
    assert (
        "foregroundDeletion"
        in apps.read_namespaced_deployment("owner", kube_namespace).metadata.finalizers
    )
    core.patch_namespaced_config_map("dep", kube_namespace, {"metadata": {"finalizers": None}})

    eventually(gone(lambda: apps.read_namespaced_deployment("owner", kube_namespace)))


def test_orphan_deletion_keeps_dependents(kube_api: client.ApiClient, kube_namespace: str) -> None:
    apps, core = client.AppsV1Api(kube_api), client.CoreV1Api(kube_api)
    owner = apps.create_namespaced_deployment(kube_namespace, deployment("owner"))
    core.create_namespaced_config_map(kube_namespace, _owned_cm("dep", owner))
    apps.delete_namespaced_deployment("owner", kube_namespace, propagation_policy="Orphan")
    eventually(
        lambda: (
            core.read_namespaced_config_map("dep", kube_namespace).metadata.owner_references is None
        )
    )


def test_deleting_a_namespace_empties_then_removes_it(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "a"}})
    core.delete_namespace("doomed")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "b"}})
    assert err.value.status in (403, 404)

    eventually(gone(lambda: core.read_namespace("doomed")))
    assert (
        core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=doomed").items
        == []
    )


def test_deployment_becomes_ready_after_the_delay(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(
        kube_namespace, deployment("web", replicas=3, **{"kubesim.gati.dev/ready-after": "200ms"})
    )
    early = eventually(
        lambda: (
            apps.read_namespaced_deployment_status("web", kube_namespace).status.observed_generation
            == 1
        )
    )
    assert early
    st = apps.read_namespaced_deployment_status("web", kube_namespace).status
    assert not st.ready_replicas
    assert st.unavailable_replicas == 3

    def ready() -> bool:
        s = apps.read_namespaced_deployment_status("web", kube_namespace).status
        return s.ready_replicas == 3 and s.available_replicas == 3 and s.updated_replicas == 3

    eventually(ready)
    conds = {
        c.type: (c.status, c.reason)
        for c in apps.read_namespaced_deployment_status("web", kube_namespace).status.conditions
    }
    assert conds == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


@pytest.mark.parametrize(
    ("image", "annotations"),
    [("nginx:1.27", {"kubesim.gati.dev/fail": "true"}), ("registry/app:v2-failing", {})],
)
def test_failing_pods_keep_a_deployment_unavailable(
    kube_api: client.ApiClient, kube_namespace: str, image: str, annotations: dict[str, str]
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, deployment("bad", image=image, **annotations))

    def failed() -> bool:
        s = apps.read_namespaced_deployment_status("bad", kube_namespace).status
        conds = {c.type: (c.status, c.reason) for c in s.conditions or []}
        return conds.get("Progressing") == ("False", "ProgressDeadlineExceeded")

    eventually(failed)
    s = apps.read_namespaced_deployment_status("bad", kube_namespace).status
    assert not s.available_replicas
    assert s.unavailable_replicas == 2


def test_deployment_scale_subresource(kube_api: client.ApiClient, kube_namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, deployment("web"))
    scale = apps.read_namespaced_deployment_scale("web", kube_namespace)
    assert scale.spec.replicas == 2
    assert scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", kube_namespace, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 4


def test_a_finalizer_inside_holds_its_namespace_until_released(kube_api: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": "held-ns"}})
    core.create_namespaced_config_map(
        "held-ns", {"metadata": {"name": "a", "finalizers": ["example.com/keep"]}}
    )
    core.delete_namespace("held-ns")
    eventually(lambda: core.read_namespace("held-ns").status.phase == "Terminating")
    assert core.read_namespaced_config_map("a", "held-ns").metadata.deletion_timestamp
    core.patch_namespaced_config_map("a", "held-ns", {"metadata": {"finalizers": None}})
    eventually(gone(lambda: core.read_namespace("held-ns")))
