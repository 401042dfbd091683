"""The patch content types over HTTP, dry runs and delete preconditions."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from gati_kubesim.server import ThreadedKubeSim
from kubesim.samples import deployment


def test_strategic_merge_keeps_other_containers(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1"})
    apps.create_namespaced_deployment(kube_namespace, body)
    patched = apps.patch_namespaced_deployment(
        "web",
        kube_namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}},
    )  # the client sends strategic merge for dict bodies on built-ins
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"main": "nginx:2", "side": "busybox:1"}


def test_merge_patch_null_deletes_and_json_patch_ops(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    )
    merged = core.patch_namespaced_config_map(
        "c", kube_namespace, {"data": {"a": None}}, _content_type="application/merge-patch+json"
    )
    assert merged.data == {"b": "2"}
    ops = [{"op": "add", "path": "/data/c", "value": "3"}, {"op": "remove", "path": "/data/b"}]
    patched = core.patch_namespaced_config_map("c", kube_namespace, ops)
    assert patched.data == {"c": "3"}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "c", kube_namespace, [{"op": "test", "path": "/data/c", "value": "nope"}]
        )
    assert err.value.status == 422


def test_patch_with_a_stale_resource_version_conflicts(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "c"}})
    core.patch_namespaced_config_map("c", kube_namespace, {"data": {"a": "1"}})
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "c",
            kube_namespace,
            {"metadata": {"resourceVersion": made.metadata.resource_version}, "data": {"a": "2"}},
        )
    assert err.value.status == 409


def test_dry_run_writes_nothing(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    would = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "c"}}, dry_run="All"
    )
    assert would.metadata.name == "c"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("c", kube_namespace)
    assert err.value.status == 404


def test_delete_preconditions(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "c"}})
    with pytest.raises(ApiException) as err:
        core.delete_namespaced_config_map(
            "c", kube_namespace, body=client.V1DeleteOptions(preconditions={"uid": "other"})
        )
    assert err.value.status == 409
    core.delete_namespaced_config_map(
        "c", kube_namespace, body=client.V1DeleteOptions(preconditions={"uid": made.metadata.uid})
    )


def test_unsupported_patch_type_is_415(
    kubesim_server: ThreadedKubeSim, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    client.CoreV1Api(kube_api).create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "c"}}
    )
    request = urllib.request.Request(
        f"{kubesim_server.url}/api/v1/namespaces/{kube_namespace}/configmaps/c",
        data=b"{}",
        method="PATCH",
        headers={"Content-Type": "text/plain"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 415
    assert json.loads(err.value.read())["reason"] == "UnsupportedMediaType"
