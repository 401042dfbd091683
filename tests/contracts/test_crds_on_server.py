"""The generated CRDs installed into an API server (kubesim over HTTP): the examples are
accepted with defaults filled in, bad specs are refused with the field named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from contracts.samples import handler
from fixtures.kubesim_server import api_client
from gati_contracts.crds import custom_resource_definitions
from gati_contracts.kinds import GROUP, VERSION, kind_info
from gati_contracts.objects import parse_object
from gati_kubesim.server import ThreadedKubeSim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def gati_api(kubesim_fresh: ThreadedKubeSim) -> Any:
    with api_client(kubesim_fresh.url) as api:
        extensions = client.ApiextensionsV1Api(api)
        for crd in custom_resource_definitions():
            # The client sends plain dicts as they are: exactly the generated document.
            extensions.create_custom_resource_definition(cast(Any, crd))
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
