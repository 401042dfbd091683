"""How the fields of each kind merge: which lists are keyed, sets or atomic, which maps are atomic.

Strategic merge patch and server-side apply both depend on this and disagree with plain JSON
merging in exactly these places, so one table serves both. The built-in entries mirror the
`patchStrategy`/`patchMergeKey` and `listType`/`listMapKey`/`structType` markers of the
Kubernetes API types kubesim serves; custom resources get the same shape from the
`x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and `x-kubernetes-map-type` markers of
their OpenAPI schema. Fields the table does not name behave like an undeclared struct field:
maps merge key by key and lists are atomic, which is what the API server does for lists
without markers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gati_kubesim import bounded

ListKind = Literal["atomic", "set", "map"]


@dataclass(frozen=True)
class ListType:
    """How one list merges.

    `kind`/`keys` are the server-side-apply view (associative list keys, with defaults for
    optional key fields such as a port's `protocol`); `patch_merge_key`/`patch_merge` are the
    strategic-merge-patch view, which for historical reasons uses a single key.
    """

    kind: ListKind = "atomic"
    keys: tuple[str, ...] = ()
    key_defaults: tuple[tuple[str, Any], ...] = ()
    patch_merge: bool = False
    patch_merge_key: str = ""


@dataclass(frozen=True)
class Node:
    """The merge shape of one field; `child`/`item` descend without needing a full schema."""

    fields: Mapping[str, Node] = field(default_factory=dict)
    elements: Node | None = None
    list_type: ListType | None = None
    atomic: bool = False
    deduced: bool = False

    def is_data_key(self, name: str) -> bool:
        """True when `name` is a key of a map (labels-like maps, schemaless objects).

        Server-side apply records such entries as owned members of their own, unlike the
        declared fields of a struct.
        """
        if name in self.fields:
            return False
        return self.deduced or (self.elements is not None and self.list_type is None)

    def child(self, name: str) -> Node:
        if name in self.fields:
            return self.fields[name]
        if self.elements is not None and self.list_type is None:
            return self.elements
        return DEDUCED if self.deduced else OPEN

    def item(self) -> Node:
        if self.elements is not None:
            return self.elements
        return DEDUCED if self.deduced else OPEN


OPEN = Node()
DEDUCED = Node(deduced=True)
_ATOMIC = Node(atomic=True)
_SCALAR_MAP = Node(elements=OPEN)


def _struct(**fields: Node) -> Node:
    return Node(fields=fields)


def _keyed(
    key: str, *more: str, item: Node = OPEN, defaults: tuple[tuple[str, Any], ...] = ()
) -> Node:
    return Node(
        elements=item,
        list_type=ListType(
            kind="map",
            keys=(key, *more),
            key_defaults=defaults,
            patch_merge=True,
            patch_merge_key=key,
        ),
    )


def _map_list(key: str, item: Node = OPEN) -> Node:
    """Keyed for server-side apply, but replaced whole by a strategic merge patch."""
    return Node(elements=item, list_type=ListType(kind="map", keys=(key,)))


_TCP = (("protocol", "TCP"),)
_CONDITIONS = _keyed("type")

OBJECT_META = _struct(
    labels=_SCALAR_MAP,
    annotations=_SCALAR_MAP,
    finalizers=Node(list_type=ListType(kind="set", patch_merge=True)),
    ownerReferences=_keyed("uid", item=_ATOMIC),
)

_CONTAINER = _struct(
    ports=_keyed("containerPort", "protocol", defaults=_TCP),
    env=_keyed("name"),
    volumeMounts=_keyed("mountPath"),
    volumeDevices=_keyed("devicePath"),
)

_POD_SPEC = _struct(
    containers=_keyed("name", item=_CONTAINER),
    initContainers=_keyed("name", item=_CONTAINER),
    ephemeralContainers=_keyed("name", item=_CONTAINER),
    volumes=_keyed("name"),
    imagePullSecrets=_keyed("name"),
    hostAliases=_keyed("ip"),
    topologySpreadConstraints=_keyed("topologyKey", "whenUnsatisfiable"),
    schedulingGates=_keyed("name"),
    resourceClaims=_keyed("name"),
    nodeSelector=_SCALAR_MAP,
)

_POD_TEMPLATE = _struct(metadata=OBJECT_META, spec=_POD_SPEC)


def _kind(spec: Node | None = None, status: Node | None = None, **extra: Node) -> Node:
    fields: dict[str, Node] = {"metadata": OBJECT_META, **extra}
    if spec is not None:
        fields["spec"] = spec
    if status is not None:
        fields["status"] = status
    return Node(fields=fields)


_WITH_CONDITIONS = _struct(conditions=_CONDITIONS)

BUILTIN_KINDS: dict[str, Node] = {
    "apps/v1/Deployment": _kind(
        spec=_struct(selector=_ATOMIC, template=_POD_TEMPLATE), status=_WITH_CONDITIONS
    ),
    "apps/v1/StatefulSet": _kind(
        spec=_struct(selector=_ATOMIC, template=_POD_TEMPLATE), status=_WITH_CONDITIONS
    ),
    "v1/ServiceAccount": _kind(secrets=_keyed("name")),
    "rbac.authorization.k8s.io/v1/Role": _kind(),
    "rbac.authorization.k8s.io/v1/RoleBinding": _kind(),
    "rbac.authorization.k8s.io/v1/ClusterRole": _kind(),
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": _kind(),
    "v1/Service": _kind(
        spec=_struct(
            ports=_keyed("port", "protocol", defaults=_TCP),
            selector=Node(elements=OPEN, atomic=True),
        ),
        status=_struct(conditions=_CONDITIONS),
    ),
    "v1/ConfigMap": _kind(data=_SCALAR_MAP, binaryData=_SCALAR_MAP),
    "v1/Secret": _kind(data=_SCALAR_MAP, stringData=_SCALAR_MAP),
    "v1/Namespace": _kind(spec=_struct(), status=_WITH_CONDITIONS),
    "autoscaling/v2/HorizontalPodAutoscaler": _kind(spec=_struct(), status=_WITH_CONDITIONS),
    "policy/v1/PodDisruptionBudget": _kind(
        spec=_struct(selector=_ATOMIC),
        status=_struct(conditions=_CONDITIONS, disruptedPods=_SCALAR_MAP),
    ),
    "networking.k8s.io/v1/NetworkPolicy": _kind(spec=_struct(podSelector=_ATOMIC)),
    "coordination.k8s.io/v1/Lease": _kind(spec=_struct()),
    "v1/Event": _kind(),
    "events.k8s.io/v1/Event": _kind(),
    "apiextensions.k8s.io/v1/CustomResourceDefinition": _kind(
        spec=_struct(), status=_struct(conditions=_map_list("type"))
    ),
}

# Go structs that are never absent once decoded: the API server compares against their
# empty values, so server-side apply must treat them as present-but-empty, not as added.
ZERO_STRUCTS: dict[str, dict[str, Any]] = {
    "apps/v1/Deployment": {
        "metadata": {},
        "spec": {"strategy": {}, "template": {"metadata": {}, "spec": {}}},
        "status": {},
    },
    "apps/v1/StatefulSet": {
        "metadata": {},
        "spec": {"template": {"metadata": {}, "spec": {}}, "updateStrategy": {}},
        "status": {},
    },
    "rbac.authorization.k8s.io/v1/RoleBinding": {"metadata": {}, "roleRef": {}},
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": {"metadata": {}, "roleRef": {}},
    "v1/Service": {"metadata": {}, "spec": {}, "status": {"loadBalancer": {}}},
    "v1/Namespace": {"metadata": {}, "spec": {}, "status": {}},
    "autoscaling/v2/HorizontalPodAutoscaler": {
        "metadata": {},
        "spec": {"scaleTargetRef": {}},
        "status": {},
    },
    "policy/v1/PodDisruptionBudget": {"metadata": {}, "spec": {}, "status": {}},
    "networking.k8s.io/v1/NetworkPolicy": {"metadata": {}, "spec": {}},
    "coordination.k8s.io/v1/Lease": {"metadata": {}, "spec": {}},
    "apiextensions.k8s.io/v1/CustomResourceDefinition": {
        "metadata": {},
        "spec": {"names": {}},
        "status": {"acceptedNames": {}},
    },
}


def builtin_node(gvk: str) -> Node | None:
    """The merge shape of a built-in kind, or None for kinds only a CRD defines."""
    return BUILTIN_KINDS.get(gvk)


def node_from_openapi(schema: Mapping[str, Any]) -> Node:
    """The merge shape a CRD's structural schema declares, as the API server derives it."""
    return _kind_from_schema(schema, root=True)


_SCHEMALESS = Node(fields={"metadata": OBJECT_META}, deduced=True)
# Shapes of the CRD schemas in use, by the schema object's identity (held, so the id stays
# its own): every write to a custom resource needs one, and deriving it walks the schema.
# Schemas come from stored CRDs, which are never mutated, so identity is enough.
_SCHEMA_NODES: dict[int, tuple[Mapping[str, Any], Node]] = {}
_SCHEMA_NODES_MAX = 256


def kind_node(gvk: str, schema: Mapping[str, Any] | None = None) -> Node:
    """Built-in shape, else the schema's, else schemaless (maps by key, lists atomic)."""
    builtin = builtin_node(gvk)
    if builtin is not None:
        return builtin
    if schema is None:
        return _SCHEMALESS
    cached = _SCHEMA_NODES.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    node = node_from_openapi(schema)
    _SCHEMA_NODES[id(schema)] = (schema, node)
    bounded.trim(_SCHEMA_NODES, _SCHEMA_NODES_MAX)
    return node


def _kind_from_schema(schema: Mapping[str, Any], root: bool = False) -> Node:
    fields = {name: _kind_from_schema(sub) for name, sub in schema.get("properties", {}).items()}
    if root:
        fields["metadata"] = OBJECT_META
    items = schema.get("items")
    additional = schema.get("additionalProperties")
    elements: Node | None = None
    if isinstance(items, Mapping):
        elements = _kind_from_schema(items)
    elif isinstance(additional, Mapping):
        elements = _kind_from_schema(additional)
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    list_type: ListType | None = None
    if schema.get("type") == "array":
        kind = schema.get("x-kubernetes-list-type", "atomic")
        if kind == "map":
            keys = tuple(schema.get("x-kubernetes-list-map-keys", ()))
            defaults = tuple(
                (k, (items or {}).get("properties", {}).get(k, {})["default"])
                for k in keys
                if "default" in (items or {}).get("properties", {}).get(k, {})
            )
            list_type = ListType(kind="map", keys=keys, key_defaults=defaults)
        elif kind == "set":
            list_type = ListType(kind="set")
        else:
            list_type = ListType(kind="atomic")
    atomic = schema.get("x-kubernetes-map-type") == "atomic"
    deduced = preserve and elements is None
    return Node(
        fields=fields, elements=elements, list_type=list_type, atomic=atomic, deduced=deduced
    )
