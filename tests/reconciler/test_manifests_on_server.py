"""Rendered manifests applied to an API server (kubesim over HTTP) with server-side apply, as the
reconciler will: accepted, a re-apply is a no-op, the scaler keeps the replicas the render leaves
out, and a dropped env var is gone."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from contracts.samples import FULL_HANDLER, FULL_MODULE, handler
from gati_contracts.crds import custom_resource_definitions
from gati_contracts.handler import GatiHandler
from gati_contracts.kinds import kind_info
from gati_contracts.labels import FIELD_MANAGER
from gati_contracts.module import GatiModule
from gati_contracts.objects import GatiObject, parse_object
from gati_kubesim.server import ThreadedKubeSim
from gati_reconciler.diff import object_changes
from gati_reconciler.manifests import KINDS_OWNED_BY, render

APPLY = "application/apply-patch+yaml"
JSON = "application/json"


class Api:
    """The few raw calls these tests need, spelled as kubectl sends them."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(
        self, method: str, path: str, body: Any = None, content: str = "application/json"
    ) -> Any:
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": content},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            pytest.fail(f"{method} {path}: {error.code} {error.read().decode()}")

    def collection(self, obj: dict[str, Any]) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        owned = {info.kind: info for infos in KINDS_OWNED_BY.values() for info in infos}
        plural = owned[kind].plural if kind in owned else kind_info(kind).plural
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        return f"{base}/namespaces/{obj['metadata']['namespace']}/{plural}"

    def item(self, obj: dict[str, Any]) -> str:
        return f"{self.collection(obj)}/{obj['metadata']['name']}"

    def apply(self, obj: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
        path = f"{self.item(obj)}?fieldManager={manager}&force=true"
        result: dict[str, Any] = self.call("PATCH", path, obj, APPLY)
        return result

    def get(self, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", self.item(obj))
        return result

    def create(self, raw: dict[str, Any]) -> GatiObject:
        return parse_object(self.call("POST", self.collection(raw), raw))


@pytest.fixture
def api(kubesim_fresh: ThreadedKubeSim) -> Api:
    api = Api(kubesim_fresh.url)
    for crd in custom_resource_definitions():
        api.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    api.call("POST", "/api/v1/namespaces", namespace)
    return api


def workload(api: Api, raw: dict[str, Any]) -> GatiHandler | GatiModule:
    created = api.create(raw)
    assert isinstance(created, GatiHandler | GatiModule)
    return created


def deployment_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(obj for obj in objects if obj["kind"] == "Deployment")


@pytest.mark.parametrize(
    "raw",
    [
        FULL_HANDLER,
        handler(replicas=3),
        FULL_MODULE | {"spec": FULL_MODULE["spec"] | {"replicas": 2}},
    ],
    ids=["full handler", "handler, 3 replicas", "module, 2 replicas"],
)
def test_objects_are_accepted_and_a_reapply_changes_nothing(api: Api, raw: dict[str, Any]) -> None:
    objects = render(workload(api, copy.deepcopy(raw)))
    first = [api.apply(obj)["metadata"] for obj in objects]
    second = [api.apply(obj)["metadata"] for obj in objects]
    for obj, before, after in zip(objects, first, second, strict=True):
        assert after.get("generation") == before.get("generation"), obj["kind"]
        if obj["kind"] != "Deployment":  # the simulated controller writes Deployment status
            assert after["resourceVersion"] == before["resourceVersion"], obj["kind"]


@pytest.mark.parametrize(("mode", "replicas_after"), [("hpa", 5), ("none", 2)])
def test_the_scaler_keeps_the_replicas_a_render_leaves_out(
    api: Api, mode: str, replicas_after: int
) -> None:
    deployment = deployment_of(render(workload(api, handler(replicas=2, scaling={"mode": mode}))))
    api.apply(deployment)
    scaled = {key: deployment[key] for key in ("apiVersion", "kind")}
    scaled["metadata"] = {key: deployment["metadata"][key] for key in ("name", "namespace")}
    scaled["spec"] = {"replicas": 5}
    api.apply(scaled, manager="gati-scaler")
    assert api.apply(deployment)["spec"]["replicas"] == replicas_after


def applied_then_dropped(api: Api) -> list[dict[str, Any]]:
    """Applies a handler with env KEEP and DROP; renders it again without DROP."""
    created = workload(api, handler(env={"KEEP": "1", "DROP": "2"}))
    for obj in render(created):
        api.apply(obj)
    dropped = created.model_copy(deep=True)
    del dropped.spec.env["DROP"]
    return render(dropped)


def test_a_dropped_env_var_is_gone_from_config_map_and_pods(api: Api) -> None:
    objects = applied_then_dropped(api)
    for obj in objects:
        api.apply(obj)
    config_map = next(obj for obj in objects if obj["kind"] == "ConfigMap")
    assert api.get(config_map)["data"] == {"KEEP": "1"}
    [container] = api.get(deployment_of(objects))["spec"]["template"]["spec"]["containers"]
    assert [entry["name"] for entry in container["env"]] == ["KEEP"]


def test_a_dry_run_apply_diffed_against_live_shows_the_removal(api: Api) -> None:
    wanted = deployment_of(applied_then_dropped(api))
    live = api.get(wanted)
    path = f"{api.item(wanted)}?fieldManager={FIELD_MANAGER}&force=true&dryRun=All"
    would_be = api.call("PATCH", path, wanted, APPLY)
    paths = {change.path for change in object_changes(live, would_be)}
    assert "spec.template.spec.containers[name=handler].env[name=DROP]" in paths
    assert api.get(wanted)["spec"] == live["spec"], "a dry run changes nothing"
