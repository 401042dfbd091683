"""Server-side apply over HTTP: keyed lists shared by managers, /status apply, bad applies."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from gati_kubesim.server import ThreadedKubeSim

APPLY = "application/apply-patch+yaml"


def _deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers},
            },
        },
    }


def test_managers_share_a_keyed_list(kube_api: client.ApiClient, kube_namespace: str) -> None:
    apps = client.AppsV1Api(kube_api)
    main = {"name": "main", "image": "nginx:1"}
    side = {"name": "side", "image": "busybox:1"}
    base = _deployment([main])
    base["metadata"]["namespace"] = kube_namespace
    apps.patch_namespaced_deployment(
        "web", kube_namespace, base, field_manager="operator", _content_type=APPLY
    )
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": kube_namespace},
        "spec": {"template": {"spec": {"containers": [side]}}},
    }
    apps.patch_namespaced_deployment(
        "web", kube_namespace, sidecar, field_manager="injector", _content_type=APPLY
    )
    live = apps.read_namespaced_deployment("web", kube_namespace)
    assert [c.name for c in live.spec.template.spec.containers] == ["main", "side"]
    base["spec"]["template"]["spec"]["containers"] = [{"name": "main", "image": "nginx:2"}]
    apps.patch_namespaced_deployment(
        "web", kube_namespace, base, field_manager="operator", _content_type=APPLY
    )
    images = {
        c.name: c.image
        for c in apps.read_namespaced_deployment(
            "web", kube_namespace
        ).spec.template.spec.containers
    }
    assert images == {"main": "nginx:2", "side": "busybox:1"}


def test_apply_to_status_leaves_the_spec_alone(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    body = _deployment([{"name": "main", "image": "nginx:1"}])
    body["metadata"]["namespace"] = kube_namespace
    body["metadata"]["annotations"] = {"kubesim.gati.dev/ready-after": "1h"}
    apps.create_namespaced_deployment(kube_namespace, body)
    status = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": kube_namespace},
        "spec": {"replicas": 9},
        "status": {"observedGeneration": 7},
    }
    result = apps.patch_namespaced_deployment_status(
        "web", kube_namespace, status, field_manager="ctrl", force=True, _content_type=APPLY
    )
    assert result.status.observed_generation == 7
    assert result.spec.replicas == 1
    managers = {(m.manager, m.subresource) for m in result.metadata.managed_fields}
    assert ("ctrl", "status") in managers


def test_apply_that_sets_managed_fields_is_refused(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": kube_namespace, "managedFields": [{"manager": "m"}]},
    }
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map(
            "x", kube_namespace, body, field_manager="t", _content_type=APPLY
        )
    assert err.value.status == 400
    assert "managedFields" in json.loads(err.value.body)["message"]


def test_yaml_and_json_apply_bodies_are_read_alike(
    kubesim_server: ThreadedKubeSim, kube_namespace: str
) -> None:
    """JSON bodies take a fast decoder and YAML the YAML parser; both mean the same."""
    fields_v1 = []
    for name, encode in (("from-json", json.dumps), ("from-yaml", yaml.safe_dump)):
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": "x"}},
            "data": {"on": "yes", "n": "1"},
        }
        url = (
            f"{kubesim_server.url}/api/v1/namespaces/{kube_namespace}/configmaps/{name}"
            "?fieldManager=m"
        )
        request = urllib.request.Request(
            url, data=encode(body).encode(), method="PATCH", headers={"Content-Type": APPLY}
        )
        with urllib.request.urlopen(request) as resp:
            created = json.loads(resp.read())
        assert created["data"] == {"on": "yes", "n": "1"}
        assert created["metadata"]["labels"] == {"app": "x"}
        fields_v1.append(created["metadata"]["managedFields"][0]["fieldsV1"])
    assert fields_v1[0] == fields_v1[1]
