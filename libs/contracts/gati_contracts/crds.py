"""CustomResourceDefinitions generated from the models, so the schema cannot drift from the code.

The pydantic JSON Schema is rewritten into a Kubernetes *structural* schema: references inlined,
`Optional` unions collapsed (absent fields are simply not required), numeric bounds in OpenAPI
v3.0 form, pattern-keyed maps turned into plain maps. Only keywords the API server accepts
survive, and an unexpected keyword fails generation instead of producing a CRD the cluster
would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import yaml
from pydantic import BaseModel

from gati_contracts.fieldtypes import DNS_SUBDOMAIN_PATTERN
from gati_contracts.handler import GatiHandlerSpec, GatiHandlerStatus
from gati_contracts.kinds import (
    CATEGORY,
    GATI_HANDLER,
    GATI_KINDS,
    GATI_MODULE,
    GATI_VERSION,
    GROUP,
    VERSION,
    KindInfo,
)
from gati_contracts.module import GatiModuleSpec
from gati_contracts.version import GatiVersionSpec, GatiVersionStatus
from gati_contracts.workload import WorkloadStatus

_KEPT: Final = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "format",
        "default",
        "anyOf",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
    }
)
_LEADING: Final = {"type": 0, "description": 1}
_DROPPED: Final = frozenset({"title", "$defs", "propertyNames", "patternProperties", "$ref"})

_SCHEMAS: Final[dict[KindInfo, tuple[type[BaseModel], type[BaseModel]]]] = {
    GATI_HANDLER: (GatiHandlerSpec, GatiHandlerStatus),
    GATI_MODULE: (GatiModuleSpec, WorkloadStatus),
    GATI_VERSION: (GatiVersionSpec, GatiVersionStatus),
}
_DESCRIPTIONS: Final = {
    GATI_HANDLER: "One version of one HTTP path of a Gati application.",
    GATI_MODULE: "A shared Gati module, sandboxed under the restricted Pod Security profile.",
    GATI_VERSION: "The record of one handler version: rollout, traffic and decommission.",
}


def _column(name: str, path: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_AGE: Final = _column("Age", ".metadata.creationTimestamp", "date")
_PHASE: Final = _column("Phase", ".status.phase")
_READY: Final = _column("Ready", ".status.readyReplicas", "integer")
_COLUMNS: Final = {
    GATI_HANDLER: [
        _column("Path", ".spec.handlerPath"),
        _column("Version", ".spec.version"),
        _PHASE,
        _READY,
        _column("Scaling", ".spec.scaling.mode", priority=1),
        _AGE,
    ],
    GATI_MODULE: [
        _column("Module", ".spec.moduleName"),
        _column("Type", ".spec.moduleType"),
        _PHASE,
        _READY,
        _AGE,
    ],
    GATI_VERSION: [
        _column("Path", ".status.handlerPath"),
        _column("Version", ".spec.versionId"),
        _PHASE,
        _column("Weight", ".status.currentWeight", "integer"),
        _column("Step", ".status.currentStep", "integer"),
        _column("Handler", ".spec.handlerRef.name", priority=1),
        _AGE,
    ],
}
_SCALE: Final = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.selector",
}


# Kubernetes lets a CRD restrict only `metadata.name` (and generateName); the name must fit a
# label value because services label what they create with it.
_METADATA: Final = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 63, "pattern": DNS_SUBDOMAIN_PATTERN}},
}


def structural_schema(model: type[BaseModel], *, keep_defaults: bool) -> dict[str, Any]:
    """The model's input schema in the structural form `apiextensions.k8s.io/v1` requires.

    `keep_defaults` lets the API server fill spec defaults, so `kubectl get -o yaml` shows the
    effective values; status is written by services only and needs none.
    """
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}), keep_defaults)


def _convert(node: Mapping[str, Any], defs: Mapping[str, Any], defaults: bool) -> dict[str, Any]:
    node = _resolved(node, defs)
    unknown = node.keys() - _KEPT - _DROPPED - {"exclusiveMinimum", "exclusiveMaximum"}
    if unknown:
        raise ValueError(f"keywords {sorted(unknown)} have no structural-schema form")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and not (defaults and _is_scalar(value))):
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, defaults) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, defaults)
        elif key == "additionalProperties":
            if isinstance(value, Mapping):
                out[key] = _convert(value, defs, defaults)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "format":
            if value == "date-time":
                out[key] = value
        else:
            out[key] = value
    if "patternProperties" in node:
        # Map keys are checked by the models, not by a CEL rule: for a map without size bounds
        # the API server estimates `k.matches(...)` beyond its cost budget and refuses the CRD.
        (values,) = node["patternProperties"].values()
        out["additionalProperties"] = _convert(values, defs, defaults)
    # `type` and `description` first: the committed YAML is read by people, too.
    return dict(sorted(out.items(), key=lambda item: _LEADING.get(item[0], len(_LEADING))))


def _resolved(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    """Inline `$ref` and collapse `X | None`, keeping the field's own keywords on top."""
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        elif "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
            options = [option for option in node["anyOf"] if option != {"type": "null"}]
            if len(options) != 1:
                raise ValueError(f"a union of {options} has no structural-schema form")
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**options[0], **rest}
        else:
            return node


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def custom_resource_definition(kind: KindInfo) -> dict[str, Any]:
    spec_model, status_model = _SCHEMAS[kind]
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": _DESCRIPTIONS[kind],
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": _METADATA,
                    "spec": structural_schema(spec_model, keep_defaults=True),
                    "status": structural_schema(status_model, keep_defaults=False),
                },
            }
        },
        "subresources": {"status": {}},
        "additionalPrinterColumns": _COLUMNS[kind],
    }
    if "replicas" in spec_model.model_fields:
        version["subresources"]["scale"] = dict(_SCALE)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "gati-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def custom_resource_definitions() -> list[dict[str, Any]]:
    # A JSON round trip turns tuples and enum members into plain data YAML can dump safely.
    return [json.loads(json.dumps(custom_resource_definition(kind))) for kind in GATI_KINDS]


def render_yaml(crds: list[dict[str, Any]]) -> str:
    """Deterministic YAML, one document per CRD."""
    return yaml.safe_dump_all(crds, sort_keys=False, explicit_start=True, width=100)


def crd_files() -> dict[str, str]:
    """Each CRD as committed in `deploy/crds/`, keyed by file name (`<plural>.gati.dev.yaml`)."""
    return {
        f"{crd['metadata']['name']}.yaml": render_yaml([crd])
        for crd in custom_resource_definitions()
    }
