"""Which resources the server knows: the built-in kinds plus those CRDs register at runtime.

Discovery, routing, admission and the store all ask this one registry, so a CRD that
becomes Established is served everywhere at once and its removal takes it away everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gati_kubesim.openapi import Admit

ALL_VERBS = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get`, as CRD `additionalPrinterColumns` define it."""

    name: str
    type: str
    json_path: str
    description: str = ""
    format: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ScaleSpec:
    """Where the `/scale` subresource reads and writes replicas in the parent object."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None


@dataclass(frozen=True)
class ResourceType:
    """One served resource at one group/version.

    `storage_key` is shared by all versions of a resource so a CRD served at two versions
    keeps one set of objects, as the real server stores them once.
    """

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    scale: ScaleSpec | None = None
    # Kinds with a spec bump metadata.generation when anything outside metadata/status changes.
    has_generation: bool = True
    printer_columns: tuple[PrinterColumn, ...] = ()
    schema: dict[str, Any] | None = None
    # `schema` compiled once, when its CRD is stored, for admission's one walk per write.
    admit: Admit | None = field(default=None, compare=False, repr=False)
    preserve_unknown: bool = True
    custom: bool = False
    verbs: tuple[str, ...] = ALL_VERBS
    # Fields selectable with fieldSelector besides metadata.name/metadata.namespace.
    field_labels: tuple[str, ...] = ()
    # Set when another group's resource holds the objects (events.k8s.io Events are v1's).
    storage: tuple[str, str] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        return self.storage or (self.group, self.plural)

    @property
    def gvk(self) -> str:
        """`apps/v1/Deployment` or `v1/ConfigMap`, the key the patch modules take."""
        return f"{self.api_version}/{self.kind}"


def _core(
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    has_status: bool = False,
    has_generation: bool = False,
    field_labels: tuple[str, ...] = (),
    group: str = "",
    version: str = "v1",
    scale: ScaleSpec | None = None,
    verbs: tuple[str, ...] = ALL_VERBS,
    storage: tuple[str, str] | None = None,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        has_status=has_status,
        has_generation=has_generation,
        field_labels=field_labels,
        scale=scale,
        verbs=verbs,
        storage=storage,
    )


EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

RBAC = "rbac.authorization.k8s.io"

BUILTINS: tuple[ResourceType, ...] = (
    _core(
        "Namespace",
        "namespaces",
        namespaced=False,
        short=("ns",),
        has_status=True,
        field_labels=("status.phase",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _core("ConfigMap", "configmaps", short=("cm",)),
    _core("Secret", "secrets", field_labels=("type",)),
    _core(
        "Service",
        "services",
        short=("svc",),
        categories=("all",),
        has_status=True,
        field_labels=("spec.clusterIP", "spec.type"),
    ),
    _core("Event", "events", short=("ev",), field_labels=EVENT_FIELDS),
    _core(
        "Event",
        "events",
        group="events.k8s.io",
        short=("ev",),
        field_labels=("regarding.kind", "regarding.name", "regarding.namespace", "reason", "type"),
        storage=("", "events"),
    ),
    _core(
        "Deployment",
        "deployments",
        group="apps",
        short=("deploy",),
        categories=("all",),
        has_status=True,
        has_generation=True,
        scale=ScaleSpec(label_selector_path=".spec.selector"),
    ),
    # No controller acts on StatefulSets: they are stored, scaled and served as written.
    _core(
        "StatefulSet",
        "statefulsets",
        group="apps",
        short=("sts",),
        categories=("all",),
        has_status=True,
        has_generation=True,
        scale=ScaleSpec(label_selector_path=".spec.selector"),
    ),
    _core("ServiceAccount", "serviceaccounts", short=("sa",)),
    _core("Role", "roles", group=RBAC),
    _core("RoleBinding", "rolebindings", group=RBAC),
    _core("ClusterRole", "clusterroles", group=RBAC, namespaced=False),
    _core("ClusterRoleBinding", "clusterrolebindings", group=RBAC, namespaced=False),
    _core(
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        group="autoscaling",
        version="v2",
        short=("hpa",),
        categories=("all",),
        has_status=True,
        has_generation=True,
    ),
    _core("Lease", "leases", group="coordination.k8s.io"),
    _core(
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        group="policy",
        short=("pdb",),
        has_status=True,
        has_generation=True,
    ),
    _core(
        "NetworkPolicy",
        "networkpolicies",
        group="networking.k8s.io",
        short=("netpol",),
        has_generation=True,
    ),
    _core(
        "CustomResourceDefinition",
        "customresourcedefinitions",
        group="apiextensions.k8s.io",
        namespaced=False,
        short=("crd", "crds"),
        categories=("api-extensions",),
        has_status=True,
        has_generation=True,
    ),
)


class Registry:
    """Served resources by group/version/plural, and the CRD-defined ones by CRD name."""

    def __init__(self, builtins: Iterable[ResourceType] = BUILTINS) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        # Group -> versions in preference order; kept so /apis lists groups stably.
        self._groups: dict[str, list[str]] = {}
        for rt in builtins:
            self._add(rt)

    def _add(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        versions = self._groups.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)

    def _rebuild_groups(self) -> None:
        self._groups = {}
        for rt in self._by_path.values():
            versions = self._groups.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rt in self._by_path.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    def versions_of(self, group: str, plural: str) -> list[ResourceType]:
        """Every served version of one stored resource (a CRD may serve several)."""
        return [rt for rt in self._by_path.values() if rt.storage_key == (group, plural)]

    def groups(self) -> dict[str, list[str]]:
        return {g: list(v) for g, v in self._groups.items()}

    def resources(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._by_path.values() if rt.group == group and rt.version == version]

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_path.values()))

    def register_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve a CRD's versions, replacing what an earlier revision of it registered."""
        clash = self.builtin_clash(types)
        if clash is not None:
            raise ValueError(f"{clash} would shadow a built-in resource")
        self.unregister_crd(crd_name)
        for rt in types:
            self._add(rt)
        self._by_crd[crd_name] = types

    def builtin_clash(self, types: list[ResourceType]) -> str | None:
        """The first `plural.group/version` among `types` that a built-in already serves."""
        for rt in types:
            existing = self._by_path.get((rt.group, rt.version, rt.plural))
            if existing is not None and not existing.custom:
                return f"{rt.plural}.{rt.group}/{rt.version}"
        return None

    def unregister_crd(self, crd_name: str) -> None:
        for rt in self._by_crd.pop(crd_name, []):
            self._by_path.pop((rt.group, rt.version, rt.plural), None)
        self._rebuild_groups()
