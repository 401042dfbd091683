"""CustomResourceDefinitions: checking one and turning it into served resource types.

Registering a CRD must serve its resource immediately (tests create a CRD and then a custom
resource in the next call), so the CRD's status is set to Established in the same write.
"""

from __future__ import annotations

from typing import Any

from gati_kubesim import jsonpath, openapi
from gati_kubesim.errors import Cause
from gati_kubesim.registry import PrinterColumn, ResourceType, ScaleSpec
from gati_kubesim.timestamps import now_rfc3339

_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


def check(crd: dict[str, Any]) -> list[Cause]:
    """Causes that make a CRD unusable, each naming the field to fix."""
    causes: list[Cause] = []
    spec = crd.get("spec") or {}
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    plural = names.get("plural") or ""
    if not group:
        causes.append(Cause("spec.group", "FieldValueRequired", "Required value"))
    if not plural:
        causes.append(Cause("spec.names.plural", "FieldValueRequired", "Required value"))
    if not names.get("kind"):
        causes.append(Cause("spec.names.kind", "FieldValueRequired", "Required value"))
    name = (crd.get("metadata") or {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            Cause(
                "metadata.name",
                "FieldValueInvalid",
                f'must be spec.names.plural+"."+spec.group ({plural}.{group})',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "spec.scope", "FieldValueNotSupported", 'supported values: "Cluster", "Namespaced"'
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            Cause("spec.versions", "FieldValueRequired", "must have at least one version")
        )
    if sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            Cause(
                "spec.versions",
                "FieldValueInvalid",
                "must have exactly one version marked as storage version",
            )
        )
    for i, v in enumerate(versions):
        if not v.get("name"):
            causes.append(Cause(f"spec.versions[{i}].name", "FieldValueRequired", "Required value"))
        for j, col in enumerate(v.get("additionalPrinterColumns") or []):
            where = f"spec.versions[{i}].additionalPrinterColumns[{j}]"
            if col.get("type") not in _COLUMN_TYPES:
                causes.append(
                    Cause(
                        f"{where}.type",
                        "FieldValueNotSupported",
                        f"supported values: {', '.join(_COLUMN_TYPES)}",
                    )
                )
            try:
                jsonpath.validate(str(col.get("jsonPath", "")))
            except jsonpath.JsonPathError as exc:
                causes.append(Cause(f"{where}.jsonPath", "FieldValueInvalid", str(exc)))
    return causes


def resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    out: list[ResourceType] = []
    for v in spec["versions"]:
        if not v.get("served", True):
            continue
        sub = v.get("subresources") or {}
        scale = sub.get("scale")
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        out.append(
            ResourceType(
                group=spec["group"],
                version=v["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec["scope"] == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in sub,
                has_generation=True,
                scale=ScaleSpec(
                    spec_replicas_path=scale["specReplicasPath"],
                    status_replicas_path=scale["statusReplicasPath"],
                    label_selector_path=scale.get("labelSelectorPath"),
                )
                if scale
                else None,
                printer_columns=tuple(
                    PrinterColumn(
                        name=c["name"],
                        type=c["type"],
                        json_path=c["jsonPath"],
                        description=c.get("description", ""),
                        format=c.get("format", ""),
                        priority=int(c.get("priority", 0)),
                    )
                    for c in v.get("additionalPrinterColumns") or []
                ),
                schema=schema,
                admit=openapi.compile_schema(schema) if schema is not None else None,
                preserve_unknown=bool((schema or {}).get("x-kubernetes-preserve-unknown-fields")),
                custom=True,
            )
        )
    return out


def storage_version(crd: dict[str, Any]) -> str:
    return str(next(v["name"] for v in crd["spec"]["versions"] if v.get("storage")))


def established_status(crd: dict[str, Any]) -> dict[str, Any]:
    """The status the real apiextensions controller reaches once names are accepted."""
    now = now_rfc3339()
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": [storage_version(crd)],
    }
