"""CRDs: served at once, schema validation with causes, defaults, pruning, subresources."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fixtures.kubesim_server import api_client
from gati_kubesim.server import ThreadedKubeSim
from kubesim.samples import GROUP, PLURAL, VERSION, handler, handler_crd


@pytest.fixture
def crd_api(kubesim_fresh: ThreadedKubeSim) -> Iterator[client.ApiClient]:
    with api_client(kubesim_fresh.url) as api:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(handler_crd())
        yield api


def test_a_registered_crd_is_established_and_served_at_once(crd_api: client.ApiClient) -> None:
    crd = client.ApiextensionsV1Api(crd_api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert {c.type: c.status for c in crd.status.conditions}["Established"] == "True"
    custom = client.CustomObjectsApi(crd_api)
    made = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, handler("h", "default")
    )
    assert made["metadata"]["generation"] == 1
    resources = custom.get_api_resources(GROUP, VERSION)
    names = {r.name: r for r in resources.resources}
    assert names[PLURAL].short_names == ["gh"]
    assert set(names) == {PLURAL, f"{PLURAL}/status", f"{PLURAL}/scale"}


def test_invalid_custom_resource_gets_422_naming_the_field(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, handler("h", "default", port=70000)
        )
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.port"]
    bad = handler("h2", "default")
    del bad["spec"]["handlerPath"]
    with pytest.raises(ApiException) as missing:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, bad)
    causes = json.loads(missing.value.body)["details"]["causes"]
    assert causes[0]["field"] == "spec.handlerPath"
    assert causes[0]["reason"] == "FieldValueRequired"


def test_defaults_are_applied_and_unknown_fields_pruned(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    body = handler("h", "default")
    body["spec"]["unknownField"] = "dropped"
    made = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    assert made["spec"] == {"handlerPath": "/h", "replicas": 1}


def test_status_subresource_rules_for_custom_resources(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    body = handler("h", "default")
    body["status"] = {"phase": "Forged"}
    made = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    assert "status" not in made
    status = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "h",
        {"spec": {"handlerPath": "/changed"}, "status": {"phase": "Running"}},
    )
    assert status["spec"]["handlerPath"] == "/h"
    assert status["status"] == {"phase": "Running"}
    assert status["metadata"]["generation"] == 1
    main = custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "h",
        {"spec": {"handlerPath": "/new"}, "status": {"phase": "Ignored"}},
    )
    assert main["status"] == {"phase": "Running"}
    assert main["metadata"]["generation"] == 2


def test_scale_subresource_for_custom_resources(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, handler("h", "default", replicas=2)
    )
    scale = custom.get_namespaced_custom_object_scale(GROUP, VERSION, "default", PLURAL, "h")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 2
    custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, "default", PLURAL, "h", {"spec": {"replicas": 5}}
    )
    assert (
        custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "h")["spec"][
            "replicas"
        ]
        == 5
    )


def test_strategic_merge_patch_on_a_custom_resource_is_415(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, handler("h", "default")
    )
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            "h",
            {"spec": {"port": 1}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415


def test_server_side_apply_removes_a_dropped_field_and_reports_conflicts(
    crd_api: client.ApiClient,
) -> None:
    custom = client.CustomObjectsApi(crd_api)

    def apply(body: dict[str, object], manager: str, force: bool = False) -> dict[str, object]:
        result: dict[str, object] = custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            "h",
            body,
            field_manager=manager,
            force=force,
            _content_type="application/apply-patch+yaml",
        )
        return result

    # Apply creates the object (201 Created, which this client method does not decode).
    apply(handler("h", "default", port=8080, replicas=2), "ci")
    applied = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "h")
    assert applied["metadata"]["managedFields"][0]["manager"] == "ci"
    assert applied["spec"] == {"handlerPath": "/h", "port": 8080, "replicas": 2}
    dropped = apply(handler("h", "default", replicas=2), "ci")
    assert dropped["spec"] == {"handlerPath": "/h", "replicas": 2}
    with pytest.raises(ApiException) as err:
        apply(handler("h", "default", replicas=9), "other")
    assert err.value.status == 409
    body = json.loads(err.value.body)
    assert body["reason"] == "Conflict"
    assert any(c["field"].endswith("replicas") for c in body["details"]["causes"])
    forced = apply(handler("h", "default", replicas=9), "other", force=True)
    assert forced["spec"]["replicas"] == 9


def test_deleting_a_crd_stops_serving_and_removes_its_objects(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, handler("h", "default")
    )
    client.ApiextensionsV1Api(crd_api).delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert err.value.status == 404


def test_an_invalid_crd_is_rejected_with_causes(kubesim_fresh: ThreadedKubeSim) -> None:
    crd = handler_crd()
    crd["metadata"]["name"] = "wrong.name"
    crd["spec"]["versions"][0]["storage"] = False
    with api_client(kubesim_fresh.url) as api, pytest.raises(ApiException) as err:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    fields = {c["field"] for c in json.loads(err.value.body)["details"]["causes"]}
    assert fields == {"metadata.name", "spec.versions"}


def test_unknown_fields_follow_field_validation(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    body = handler("h", "default")
    body["spec"]["tyop"] = 1
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, body, field_validation="Strict"
        )
    assert err.value.status == 400
    assert 'unknown field "spec.tyop"' in json.loads(err.value.body)["message"]
    _, code, headers = custom.create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, "default", PLURAL, body, field_validation="Warn"
    )
    assert code == 201
    assert headers["Warning"] == '299 - "unknown field \\"spec.tyop\\""'


def test_a_crd_cannot_shadow_a_builtin(kubesim_fresh: ThreadedKubeSim) -> None:
    crd = handler_crd()
    crd["spec"]["group"] = "apps"
    crd["spec"]["names"]["plural"] = "deployments"
    crd["metadata"]["name"] = "deployments.apps"
    crd["spec"]["versions"][0]["name"] = "v1"
    with api_client(kubesim_fresh.url) as api, pytest.raises(ApiException) as err:
        client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    assert err.value.status == 422
    assert "built-in" in json.loads(err.value.body)["message"]


def test_in_process_hooks_inject_faults(kubesim_fresh: ThreadedKubeSim) -> None:
    from gati_kubesim.faults import FaultRule

    kubesim_fresh.call(kubesim_fresh.sim.inject_fault, FaultRule(verb="get", code=500, times=1))
    with api_client(kubesim_fresh.url) as api:
        core = client.CoreV1Api(api)
        with pytest.raises(ApiException) as err:
            core.read_namespace("default")
        assert err.value.status == 500
        kubesim_fresh.call(kubesim_fresh.sim.inject_fault, FaultRule(verb="get", code=503))
        # A test measures through the faults: metrics and health keep answering.
        for path in ("/metrics", "/healthz"):
            with urllib.request.urlopen(f"{kubesim_fresh.url}{path}", timeout=10) as response:
                assert response.status == 200
        kubesim_fresh.call(kubesim_fresh.sim.clear_faults)
        assert core.read_namespace("default").metadata.name == "default"


def test_status_writes_are_validated_against_the_schema(crd_api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(crd_api)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, handler("h", "default")
    )
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, "default", PLURAL, "h", {"status": {"replicas": "many"}}
        )
    assert err.value.status == 422
    assert json.loads(err.value.body)["details"]["causes"][0]["field"] == "status.replicas"


def test_openapi_documents_describe_the_crd_schemas_with_their_kind(
    crd_api: client.ApiClient, kubesim_fresh: ThreadedKubeSim
) -> None:
    import urllib.error
    import urllib.request

    def get(path: str, accept: str) -> dict[str, object]:
        request = urllib.request.Request(kubesim_fresh.url + path, headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as answer:
            loaded: dict[str, object] = json.load(answer)
            return loaded

    v2 = get("/openapi/v2", "application/json")
    definition = v2["definitions"][f"dev.gati.{VERSION}.GatiHandler"]  # type: ignore[index]
    gvk = {"group": GROUP, "version": VERSION, "kind": "GatiHandler"}
    assert definition["x-kubernetes-group-version-kind"] == [gvk]
    assert "handlerPath" in definition["properties"]["spec"]["properties"]
    # kubectl asks for protobuf first; JSON when it also accepts JSON, else 406 so it falls back.
    pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    assert "definitions" in get("/openapi/v2", f"{pb}, application/json")
    with pytest.raises(urllib.error.HTTPError) as refused:
        get("/openapi/v2", pb)
    assert refused.value.code == 406
    index = get("/openapi/v3", "application/json")
    url = index["paths"][f"apis/{GROUP}/{VERSION}"]["serverRelativeURL"]  # type: ignore[index]
    v3 = get(url, "application/json")
    schemas = v3["components"]["schemas"]  # type: ignore[index]
    assert schemas[f"dev.gati.{VERSION}.GatiHandler"]["x-kubernetes-group-version-kind"] == [gvk]
