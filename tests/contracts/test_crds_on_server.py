"""The generated CRDs installed into an API server (kubesim over HTTP): the examples are
accepted with defaults filled in, bad specs are refused with the field named."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from contracts.samples import handler, version
from fixtures.kubesim_server import api_client, install_gati_crds
from gati_contracts.kinds import GATI_HANDLER, GROUP, VERSION, kind_info
from gati_contracts.labels import selector_labels, selector_string
from gati_contracts.objects import parse_object
from gati_contracts.version import GatiVersionStatus, VersionPhase
from gati_kubesim.server import ThreadedKubeSim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def gati_api(kubesim_fresh: ThreadedKubeSim) -> Any:
    with api_client(kubesim_fresh.url) as api:
        install_gati_crds(api)
        namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name="shop"))
        client.CoreV1Api(api).create_namespace(namespace)
        yield client.CustomObjectsApi(api)


def _create(api: Any, obj: dict[str, Any]) -> dict[str, Any]:
    plural = kind_info(obj["kind"]).plural
    created: dict[str, Any] = api.create_namespaced_custom_object(
        GROUP, VERSION, obj["metadata"]["namespace"], plural, obj
    )
    return created


def test_examples_are_accepted_and_read_back_through_the_models(gati_api: Any) -> None:
    examples = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["apiVersion"] == f"{GROUP}/{VERSION}"
    ]
    assert examples
    for example in examples:
        stored = _create(gati_api, example)
        parsed = parse_object(stored)
        assert parsed.metadata.uid
        assert parsed.metadata.resource_version
        assert parsed == parse_object(example).model_copy(update={"metadata": parsed.metadata})


def test_bad_spec_is_refused_by_the_server_naming_the_field(gati_api: Any) -> None:
    bad = handler(port=70000)
    with pytest.raises(ApiException) as caught:
        _create(gati_api, bad)
    assert caught.value.status == 422
    assert "spec.port" in json.loads(caught.value.body or "{}")["message"]


def test_kubectl_get_gv_shows_path_version_phase_weight_and_step(gati_api: Any) -> None:
    created = _create(gati_api, version())
    status = GatiVersionStatus(
        phase=VersionPhase.PROGRESSING, handler_path="/api/users", current_weight=10, current_step=1
    )
    gati_api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "shop",
        "gativersions",
        created["metadata"]["name"],
        {"status": status.to_wire()},
    )
    host = gati_api.api_client.configuration.host
    request = urllib.request.Request(
        f"{host}/apis/{GROUP}/{VERSION}/namespaces/shop/gativersions",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        table = json.loads(response.read())
    names = [column["name"] for column in table["columnDefinitions"]]
    row = dict(zip(names, table["rows"][0]["cells"], strict=True))
    assert {k: row[k] for k in ("Path", "Version", "Phase", "Weight", "Step")} == {
        "Path": "/api/users",
        "Version": "v2",
        "Phase": "Progressing",
        "Weight": 10,
        "Step": 1,
    }


def test_scale_subresource_reads_spec_replicas_and_status_selector(gati_api: Any) -> None:
    created = _create(gati_api, handler(replicas=3))
    name = created["metadata"]["name"]
    selector = selector_string(selector_labels(GATI_HANDLER, name))
    gati_api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "shop",
        "gatihandlers",
        name,
        {"status": {"replicas": 2, "selector": selector}},
    )
    scale = gati_api.get_namespaced_custom_object_scale(
        GROUP, VERSION, "shop", "gatihandlers", name
    )
    assert scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 2, "selector": selector}
