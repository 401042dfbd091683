"""Generated CRDs: committed as generated, valid for Kubernetes, structural, and in agreement
with the models (the API server accepts what the models accept and refuses what they refuse)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from contracts.samples import FULL_HANDLER, FULL_MODULE, FULL_VERSION, handler, module, version
from gati_cli.main import main
from gati_contracts.asyncapi import bus_documents
from gati_contracts.crds import crd_files, custom_resource_definitions
from gati_contracts.objects import parse_object

ROOT = Path(__file__).resolve().parents[2]
CRDS = {crd["spec"]["names"]["kind"]: crd for crd in custom_resource_definitions()}


def openapi(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    ("directory", "files"),
    [(ROOT / "deploy" / "crds", crd_files()), (ROOT / "docs" / "schemas", bus_documents())],
)
def test_committed_files_equal_generated_ones(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        assert (directory / name).read_text(encoding="utf-8") == text, (
            f"{directory / name} is stale: run `make crds`"
        )


def test_generation_is_deterministic_across_processes() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gati_cli", "crds"], check=True, capture_output=True, text=True
    ).stdout
    assert out == "".join(crd_files().values())
    assert [doc["kind"] for doc in yaml.safe_load_all(out)] == ["CustomResourceDefinition"] * 3


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crds_validate_as_kubernetes_resources(kind: str) -> None:
    kubernetes_validate.validate(CRDS[kind], "1.32", strict=True)


STRUCTURAL_TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        yield from _nodes(schema["items"], f"{path}[]")


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_schemas_are_structural(kind: str) -> None:
    for path, node in _nodes(openapi(kind)):
        assert "$ref" not in node, path
        assert not node.get("uniqueItems"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
        elif not node.get("x-kubernetes-preserve-unknown-fields"):
            assert node.get("type") in {
                "object",
                "array",
                "string",
                "integer",
                "number",
                "boolean",
            }, path


def test_names_subresources_and_columns() -> None:
    handlers, modules, versions = CRDS["GatiHandler"], CRDS["GatiModule"], CRDS["GatiVersion"]
    assert [crd["spec"]["names"]["shortNames"] for crd in (handlers, modules, versions)] == [
        ["gh"],
        ["gm"],
        ["gv"],
    ]
    for crd in CRDS.values():
        assert crd["spec"]["group"] == "gati.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["names"]["categories"] == ["gati"]
        assert crd["spec"]["versions"][0]["subresources"]["status"] == {}
    for crd in (handlers, modules):
        assert crd["spec"]["versions"][0]["subresources"]["scale"] == {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    assert "scale" not in versions["spec"]["versions"][0]["subresources"]

    def columns(crd: dict[str, Any]) -> list[str]:
        cols = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        return [col["name"] for col in cols if not col.get("priority")]

    assert columns(handlers) == ["Path", "Version", "Phase", "Ready", "Age"]
    assert columns(versions) == ["Path", "Version", "Phase", "Weight", "Step", "Age"]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_every_printer_column_points_at_a_schema_field(kind: str) -> None:
    for column in CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]:
        if column["jsonPath"].startswith(".metadata."):
            continue
        node = openapi(kind)
        for part in column["jsonPath"].strip(".").split("."):
            node = node["properties"][part]
        assert node["type"] == column["type"] or column["type"] == "date", column


GOOD = [FULL_HANDLER, FULL_MODULE, FULL_VERSION, handler(), module(), version()]


@pytest.mark.parametrize("wire", GOOD, ids=lambda w: f"{w['kind']}-{len(w['spec'])}")
def test_schema_accepts_what_the_models_write(wire: dict[str, Any]) -> None:
    written = parse_object(wire).to_wire()
    jsonschema.Draft4Validator(openapi(wire["kind"])).validate(written)
    jsonschema.Draft4Validator(openapi(wire["kind"])).validate(wire)


# Input the API server itself must refuse, so kubectl reports it before any service runs.
REFUSED_BY_SERVER = [
    handler() | {"metadata": {"name": "a" * 64, "namespace": "shop"}},
    handler(handlerPath="api"),
    handler(port=0),
    handler(replicas=-1),
    handler(version="v 1"),
    handler(resources={"limits": {"memory": "12x"}}),
    handler(timescape={"routingWeight": 101}),
    handler(timescape={"rollout": {"steps": [{"weight": 10, "pause": "5 minutes"}]}}),
    handler(scaling={"mode": "keda"}),
    module(moduleType="python"),
    module(capabilities=["root"]),
    version(decommission={"action": "archive"}),
    version(serviceName="Users"),
]


@pytest.mark.parametrize("wire", REFUSED_BY_SERVER)
def test_schema_refuses_what_the_models_refuse(wire: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_object(wire)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(openapi(wire["kind"])).validate(wire)


@pytest.mark.parametrize(
    ("command", "files"), [("crds", crd_files()), ("schemas", bus_documents())]
)
def test_commands_write_every_file_into_out(
    command: str, files: dict[str, str], tmp_path: Path
) -> None:
    assert main([command, "--out", str(tmp_path / "out")]) == 0
    written = {path.name: path.read_text(encoding="utf-8") for path in (tmp_path / "out").iterdir()}
    assert written == files
