"""Discovery, Tables, auth and fault injection, as clients see them over HTTP."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.kubesim_server import api_client, kubesim_hook
from gati_kubesim.server import ThreadedKubeSim
from kubesim.samples import deployment

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _get(
    url: str, accept: str = "application/json", context: ssl.SSLContext | None = None
) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5, context=context) as resp:
        body: dict[str, object] = json.loads(resp.read())
        return body


def test_version_and_group_discovery(kube_api: client.ApiClient) -> None:
    info = client.VersionApi(kube_api).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")
    groups = {g.name: g for g in client.ApisApi(kube_api).get_api_versions().groups}
    assert {
        "apps",
        "autoscaling",
        "coordination.k8s.io",
        "policy",
        "networking.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
    } <= set(groups)
    assert groups["autoscaling"].preferred_version.version == "v2"
    assert client.CoreApi(kube_api).get_api_versions().versions == ["v1"]


def test_resource_lists_carry_verbs_short_names_and_subresources(
    kube_api: client.ApiClient,
) -> None:
    apps = {r.name: r for r in client.AppsV1Api(kube_api).get_api_resources().resources}
    deploy = apps["deployments"]
    assert deploy.kind == "Deployment"
    assert deploy.namespaced
    assert deploy.short_names == ["deploy"]
    assert {"create", "list", "watch", "patch", "deletecollection"} <= set(deploy.verbs)
    assert deploy.categories == ["all"]
    scale = apps["deployments/scale"]
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    core = {r.name: r for r in client.CoreV1Api(kube_api).get_api_resources().resources}
    assert core["namespaces"].namespaced is False
    assert core["configmaps"].short_names == ["cm"]


def test_unknown_paths_are_404_status(kubesim_server: ThreadedKubeSim) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(f"{kubesim_server.url}/apis/nope.example/v1/things")
    assert err.value.code == 404
    assert json.loads(err.value.read())["kind"] == "Status"


def test_lists_and_gets_as_tables(
    kubesim_server: ThreadedKubeSim, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, deployment("web"))
    url = f"{kubesim_server.url}/apis/apps/v1/namespaces/{kube_namespace}/deployments"
    table = _get(url, TABLE)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"]]  # type: ignore[index, union-attr]
    assert columns == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    wide = [c["priority"] for c in table["columnDefinitions"]]  # type: ignore[index, union-attr]
    assert wide == [0, 0, 0, 0, 0, 1, 1, 1]
    row = table["rows"][0]  # type: ignore[index]
    assert row["cells"][0] == "web"
    assert row["object"]["kind"] == "PartialObjectMetadata"
    single = _get(f"{url}/web", TABLE)
    assert single["rows"][0]["cells"][0] == "web"  # type: ignore[index]


def test_bearer_token_is_required_over_https_when_configured() -> None:
    with ThreadedKubeSim(token="s3cret", read_only_token="look") as sim:
        assert sim.url.startswith("https://")
        ca = sim.sim.ca_file
        with api_client(sim.url, ca_file=ca) as anonymous, pytest.raises(ApiException) as err:
            client.CoreV1Api(anonymous).list_namespace()
        assert err.value.status == 401
        assert json.loads(err.value.body)["reason"] == "Unauthorized"
        with api_client(sim.url, "wrong", ca) as wrong, pytest.raises(ApiException) as bad:
            client.CoreV1Api(wrong).list_namespace()
        assert bad.value.status == 401
        with api_client(sim.url, "s3cret", ca) as api:
            assert client.CoreV1Api(api).list_namespace().items
        with api_client(sim.url, "look", ca) as reader:
            assert client.CoreV1Api(reader).list_namespace().items
            with pytest.raises(ApiException) as forbidden:
                client.CoreV1Api(reader).create_namespace({"metadata": {"name": "x"}})
            assert forbidden.value.status == 403
        context = ssl.create_default_context(cafile=str(ca))
        assert _get(f"{sim.url}/version", context=context)["major"] == "1"


def test_user_tokens_are_served_and_every_request_they_make_is_recorded() -> None:
    users = {"w-token": "system:serviceaccount:gati-system:gati-watcher"}
    with ThreadedKubeSim(users=users) as sim:
        ca = sim.sim.ca_file
        assert sim.url.startswith("https://")
        with api_client(sim.url, ca_file=ca) as anonymous, pytest.raises(ApiException) as err:
            client.CoreV1Api(anonymous).list_namespace()
        assert err.value.status == 401
        with api_client(sim.url, "w-token", ca) as api:
            core = client.CoreV1Api(api)
            core.list_namespaced_config_map("default", label_selector="a=b")
            with pytest.raises(ApiException):
                core.delete_namespaced_config_map("missing", "default")
        log = [(a.user, a.method, a.url) for a in sim.sim.access_log]
        assert log == [
            (users["w-token"], "GET", "/api/v1/namespaces/default/configmaps?labelSelector=a%3Db"),
            (users["w-token"], "DELETE", "/api/v1/namespaces/default/configmaps/missing"),
        ]


def test_injected_errors_and_latency(kubesim_fresh: ThreadedKubeSim) -> None:
    url = kubesim_fresh.url
    kubesim_hook(url, "faults", {"verb": "list", "resource": "configmaps", "code": 503, "times": 2})
    with api_client(url) as api:
        core = client.CoreV1Api(api)
        for _ in range(2):
            with pytest.raises(ApiException) as err:
                core.list_namespaced_config_map("default")
            assert err.value.status == 503
        assert core.list_namespaced_config_map("default").items == []
        assert core.list_namespace().items  # other requests never failed
        kubesim_hook(url, "faults", {"verb": "get", "latency": 0.3})
        started = time.monotonic()
        core.read_namespace("default")
        assert time.monotonic() - started >= 0.3
        kubesim_hook(url, "faults", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as bad:
            kubesim_hook(url, "faults", {"probability": 2})
        assert bad.value.code == 400


def test_metrics_count_requests_by_verb_resource_and_code(kubesim_fresh: ThreadedKubeSim) -> None:
    with api_client(kubesim_fresh.url) as api:
        core = client.CoreV1Api(api)
        core.list_namespaced_config_map("default")
        with pytest.raises(ApiException):
            core.read_namespaced_config_map("missing", "default")
    with urllib.request.urlopen(f"{kubesim_fresh.url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'apiserver_request_total{code="200",resource="configmaps",verb="list"} 1.0' in text
    assert 'apiserver_request_total{code="404",resource="configmaps",verb="get"} 1.0' in text
    assert "kubesim_objects " in text


def test_aggregated_discovery_lists_every_resource_in_one_answer(
    kubesim_fresh: ThreadedKubeSim,
) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    request = urllib.request.Request(f"{kubesim_fresh.url}/apis", headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io")
        body = json.loads(resp.read())
    assert body["kind"] == "APIGroupDiscoveryList"
    groups = {g["metadata"]["name"]: g for g in body["items"]}
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2"]
    deploy = next(
        r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments"
    )
    assert deploy["scope"] == "Namespaced"
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert {s["subresource"] for s in deploy["subresources"]} == {"status", "scale"}
    core = _get(f"{kubesim_fresh.url}/api", accept)
    assert [g["metadata"]["name"] for g in core["items"]] == [""]  # type: ignore[union-attr]
    assert _get(f"{kubesim_fresh.url}/apis")["kind"] == "APIGroupList"
