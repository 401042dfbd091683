"""StatefulSets, ServiceAccounts and RBAC objects: served as a real server serves them (the
install of deploy/ needs them), through the official client and kubectl alike."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from gati_kubesim.server import ThreadedKubeSim

KUBECTL = shutil.which("kubectl")

_STS = {
    "metadata": {"name": "nats"},
    "spec": {
        "serviceName": "nats",
        "replicas": 3,
        "selector": {"matchLabels": {"app": "nats"}},
        "template": {
            "metadata": {"labels": {"app": "nats"}},
            "spec": {"containers": [{"name": "nats", "image": "nats:2.10"}]},
        },
    },
}


def test_discovery_lists_the_kinds_with_real_scopes_short_names_and_subresources(
    kube_api: client.ApiClient,
) -> None:
    apps = {r.name: r for r in client.AppsV1Api(kube_api).get_api_resources().resources}
    assert apps["statefulsets"].short_names == ["sts"]
    assert apps["statefulsets"].categories == ["all"]
    assert {"statefulsets/status", "statefulsets/scale"} <= set(apps)
    core = {r.name: r for r in client.CoreV1Api(kube_api).get_api_resources().resources}
    assert core["serviceaccounts"].short_names == ["sa"]
    assert core["serviceaccounts"].namespaced
    rbac = {
        r.name: r for r in client.RbacAuthorizationV1Api(kube_api).get_api_resources().resources
    }
    assert {n: r.namespaced for n, r in rbac.items()} == {
        "clusterrolebindings": False,
        "clusterroles": False,
        "rolebindings": True,
        "roles": True,
    }
    assert {"create", "deletecollection", "watch"} <= set(rbac["roles"].verbs)


def test_statefulset_is_defaulted_scaled_and_validated(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    made = apps.create_namespaced_stateful_set(kube_namespace, _STS)
    assert made.spec.pod_management_policy == "OrderedReady"
    assert made.spec.update_strategy.rolling_update.partition == 0
    assert made.spec.template.spec.restart_policy == "Always"
    assert made.status.replicas == 0
    assert made.metadata.generation == 1
    scale = apps.read_namespaced_stateful_set_scale("nats", kube_namespace)
    assert (scale.spec.replicas, scale.status.selector) == (3, "app=nats")
    apps.patch_namespaced_stateful_set_scale("nats", kube_namespace, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_stateful_set("nats", kube_namespace).spec.replicas == 5
    bad = {**_STS, "metadata": {"name": "bad"}}
    bad["spec"] = {**_STS["spec"], "selector": {"matchLabels": {"app": "other"}}}  # type: ignore[dict-item]
    with pytest.raises(ApiException) as refused:
        apps.create_namespaced_stateful_set(kube_namespace, bad)
    assert refused.value.status == 422
    assert "spec.template.metadata.labels" in str(refused.value.body)


def test_strategic_merge_keeps_other_containers_of_a_statefulset(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_stateful_set(kube_namespace, _STS)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "b:1"}]}}}}
    done = apps.patch_namespaced_stateful_set("nats", kube_namespace, patch)
    assert [c.name for c in done.spec.template.spec.containers] == ["side", "nats"]


def test_rbac_and_service_accounts_round_trip(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rule = {"apiGroups": ["gati.dev"], "resources": ["gatihandlers"], "verbs": ["get"]}
    rbac.create_cluster_role({"metadata": {"name": f"{kube_namespace}-r"}, "rules": [rule]})
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}
    subject = {"kind": "ServiceAccount", "name": "op", "namespace": kube_namespace}
    rbac.create_cluster_role_binding(
        {"metadata": {"name": f"{kube_namespace}-b"}, "roleRef": ref, "subjects": [subject]}
    )
    rbac.create_namespaced_role(kube_namespace, {"metadata": {"name": "r"}, "rules": [rule]})
    rbac.create_namespaced_role_binding(
        kube_namespace, {"metadata": {"name": "b"}, "roleRef": ref, "subjects": [subject]}
    )
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "op"}})
    names = [r.metadata.name for r in rbac.list_cluster_role().items]
    assert f"{kube_namespace}-r" in names
    binding = rbac.read_namespaced_role_binding("b", kube_namespace)
    assert binding.subjects[0].name == "op"
    assert core.read_namespaced_service_account("op", kube_namespace).metadata.name == "op"
    rbac.delete_cluster_role(f"{kube_namespace}-r")
    rbac.delete_cluster_role_binding(f"{kube_namespace}-b")


@pytest.mark.kubectl
@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_kubectl_finds_the_kinds_by_short_name(tmp_path: Path) -> None:
    manifest = tmp_path / "objs.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op, namespace: default}\n"
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: op}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n"
        "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: nats, namespace: default}\n"
        "spec:\n  replicas: 1\n  serviceName: nats\n  selector: {matchLabels: {app: nats}}\n"
        "  template:\n    metadata: {labels: {app: nats}}\n"
        "    spec: {containers: [{name: nats, image: 'nats:2.10'}]}\n"
    )
    with ThreadedKubeSim() as sim:
        kubeconfig = sim.sim.write_kubeconfig(tmp_path / "kubeconfig")
        base = [str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'c'}"]

        def run(*args: str) -> str:
            done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        applied = run("apply", "--server-side", "-f", str(manifest))
        assert "statefulset.apps/nats serverside-applied" in applied
        assert run("get", "sa", "-n", "default", "-o", "name").strip() == "serviceaccount/op"
        assert (
            run("get", "clusterrole", "-o", "name").strip()
            == "clusterrole.rbac.authorization.k8s.io/op"
        )
        table = run("get", "sts", "-n", "default").splitlines()
        assert table[0].split() == ["NAME", "READY", "AGE"]
        assert table[1].split()[:2] == ["nats", "0/1"]
        run("scale", "sts", "nats", "-n", "default", "--replicas=2")
        assert run("get", "sts", "nats", "-n", "default", "-o", "jsonpath={.spec.replicas}") == "2"


def test_rbac_objects_that_could_never_grant_are_refused_naming_the_field(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(kube_api)
    with pytest.raises(ApiException) as no_verbs:
        rbac.create_namespaced_role(
            kube_namespace,
            {
                "metadata": {"name": "r"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}],
            },
        )
    assert no_verbs.value.status == 422
    causes = json.loads(no_verbs.value.body)["details"]["causes"]
    assert [c["field"] for c in causes] == ["rules[0].verbs"]
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}
    with pytest.raises(ApiException) as role_in_cluster_binding:
        rbac.create_cluster_role_binding(
            {"metadata": {"name": f"{kube_namespace}-b"}, "roleRef": ref}
        )
    causes = json.loads(role_in_cluster_binding.value.body)["details"]["causes"]
    assert [c["field"] for c in causes] == ["roleRef.kind"]
    rbac.create_namespaced_role_binding(kube_namespace, {"metadata": {"name": "b"}, "roleRef": ref})
    with pytest.raises(ApiException) as changed:
        rbac.patch_namespaced_role_binding(
            "b", kube_namespace, {"roleRef": {**ref, "name": "other"}}
        )
    assert changed.value.status == 422
    assert "cannot change roleRef" in changed.value.body
