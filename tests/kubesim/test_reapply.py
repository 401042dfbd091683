"""An apply repeated over the version it stored is answered without applying it again, and
answered exactly as applying it again would: same object, resourceVersion, warnings and
errors, through every kind of write that can come between (tested against the full apply)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gati_kubesim import api as api_module
from gati_kubesim import fieldmanager
from gati_kubesim.api import APPLY_PATCH, Api, WriteOptions
from gati_kubesim.errors import ApiError
from gati_kubesim.reapply import Reapplies
from gati_kubesim.registry import ResourceType
from gati_kubesim.server import KubeSim
from kubesim.samples import GROUP, VERSION, deployment, handler, handler_crd

NS = "ns"


def _config_map(data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "env"}, "data": data}


def _service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
    }


def _answer(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what differs between two servers (uids, clocks)."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("uid", "creationTimestamp")}
    meta["managedFields"] = [
        {k: v for k, v in entry.items() if k != "time"} for entry in meta.get("managedFields", [])
    ]
    return {**obj, "metadata": meta}


class _Client:
    """Runs writes against one server and notes every answer, warnings and errors too."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.answers: list[Any] = []

    def rt(self, group: str, version: str, plural: str) -> ResourceType:
        return self.api.resource(group, version, plural)

    def apply(
        self, rt: ResourceType, name: str, body: dict[str, Any], manager: str = "op", **opts: Any
    ) -> None:
        options = WriteOptions(manager, **opts)
        try:
            obj, created = self.api.patch(
                rt, NS, name, None, APPLY_PATCH, json.dumps(body).encode(), options
            )
        except ApiError as error:
            self.answers.append(("error", error.code, error.message))
            return
        self.answers.append((_answer(obj), created, options.warnings))

    def update(self, rt: ResourceType, name: str, sub: str | None, change: dict[str, Any]) -> None:
        live = json.loads(json.dumps(self.api.get(rt, NS, name, None)))
        live["metadata"].pop("managedFields", None)
        obj = self.api.update(rt, NS, name, sub, {**live, **change}, WriteOptions("editor"))
        self.answers.append(("update", _answer(obj)))


def _writes(client: _Client) -> None:
    configmaps = client.rt("", "v1", "configmaps")
    services = client.rt("", "v1", "services")
    deployments = client.rt("apps", "v1", "deployments")
    handlers = client.rt(GROUP, VERSION, "gatihandlers")
    config = _config_map({"A": "1"})
    client.apply(configmaps, "env", config, dry_run=True)  # nothing stored, nothing noted
    client.apply(configmaps, "env", config)
    client.apply(configmaps, "env", config)
    client.apply(configmaps, "env", config, dry_run=True)
    client.apply(configmaps, "env", config, force=True)
    client.apply(configmaps, "env", config, manager="other")
    client.update(configmaps, "env", None, {"data": {"A": "2"}})
    client.apply(configmaps, "env", config)  # conflicts with the editor
    client.apply(configmaps, "env", config)
    client.apply(configmaps, "env", config, force=True)
    client.apply(configmaps, "env", config)
    client.apply(configmaps, "env", _config_map({"A": "1", "B": "2"}))
    client.apply(configmaps, "env", config)  # prunes B again
    client.apply(configmaps, "env", config)
    client.apply(services, "web", _service())  # gets its clusterIP
    client.apply(services, "web", _service())
    client.apply(deployments, "web", deployment("web"))
    client.apply(deployments, "web", deployment("web"))
    client.update(deployments, "web", "status", {"status": {"replicas": 2}})
    client.apply(deployments, "web", deployment("web"))
    client.apply(deployments, "web", deployment("web", image="nginx:2"))
    typo = handler("h", NS, port=80)
    typo["spec"]["tyop"] = 1
    for validation in ("Warn", "Warn", "Ignore", "Strict", "Warn"):
        client.apply(handlers, "h", typo, field_validation=validation)
    client.update(handlers, "h", "status", {"status": {"phase": "Running"}})
    client.apply(handlers, "h", typo)
    client.apply(handlers, "h", {**typo, "spec": {"handlerPath": "/h", "port": 0}})  # invalid
    client.apply(handlers, "h", {**typo, "spec": {"handlerPath": "/h", "port": 0}})


def _run() -> tuple[_Client, int]:
    sim = KubeSim()
    sim.api.create(
        sim.api.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        "",
        handler_crd(),
        WriteOptions("admin"),
    )
    sim.api.create(
        sim.api.resource("", "v1", "namespaces"), "", {"metadata": {"name": NS}}, WriteOptions("a")
    )
    merges = 0
    full_apply = fieldmanager.server_side_apply

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal merges
        merges += 1
        return full_apply(*args, **kwargs)

    client = _Client(sim.api)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fieldmanager, "server_side_apply", counted)
        _writes(client)
    return client, merges


def test_a_repeated_apply_is_answered_as_applying_it_again_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remembered, merged_with_memory = _run()
    monkeypatch.setattr(Reapplies, "unchanged", lambda *args: None)
    applied, merged_every_time = _run()
    assert remembered.answers == applied.answers
    warned = [a for a in applied.answers if a[-1] == ['unknown field "spec.tyop"']]
    assert len(warned) == 4  # the first Warn, its repeat, and the two after a change
    # Only a repeat of the request that stored the version it meets skips the merge: the
    # config map's 2nd, 3rd (dry run) and last, the service's, the deployment's 2nd and the
    # handler's 2nd. Another manager, force, fieldValidation, a write in between, or a
    # refused apply (nothing stored) goes through the full apply.
    assert merged_every_time - merged_with_memory == 6


def test_a_version_no_longer_stored_is_forgotten() -> None:
    sim = KubeSim()
    api = sim.api
    api.create(
        api.resource("", "v1", "namespaces"), "", {"metadata": {"name": NS}}, WriteOptions("a")
    )
    configmaps = api.resource("", "v1", "configmaps")
    body = json.dumps(_config_map({"A": "1"})).encode()
    api.patch(configmaps, NS, "env", None, APPLY_PATCH, body, WriteOptions("op"))
    reapplies = api._reapplies
    assert len(reapplies) == 1
    api.patch(
        configmaps,
        NS,
        "env",
        None,
        APPLY_PATCH,
        b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"env"},"data":{"A":"2"}}',
        WriteOptions("op"),
    )
    assert len(reapplies) == 1
    api.delete(configmaps, NS, "env", api_module.DeleteOptions())
    assert len(reapplies) == 0
