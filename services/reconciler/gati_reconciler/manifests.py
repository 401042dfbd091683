"""The Kubernetes objects a `GatiHandler` or `GatiModule` becomes, as server-side apply bodies.

Pure functions of the resource: the same resource renders byte-identical JSON in every replica
and every run, so re-applying an unchanged resource is a no-op, and every field rendered is a
field the `gati-operator` field manager claims. A field left out is a field given up: that is how
`spec.replicas` is left to the scaler, and how a dropped env var disappears.

Objects are returned in apply order: the NetworkPolicy before the pods it confines, the ConfigMap
before the pods that read it, the Deployment before the PodDisruptionBudget that guards it.

Renders are immutable and shared. What a spec change leaves alone (metadata, selectors, probes,
security contexts, the Service, the disruption budget) is built once per workload identity and
is the very same object in every render of it, and the reconciler's render cache hands one
render to every reconcile of an unchanged object. A render is therefore cheaper to make, and
two renders are cheaper to diff: a subtree both hold by identity (`a is b`) needs no comparison.
In return no caller may change a render or anything in it, not even briefly: one that needs a
different object builds a new one from copies, as `retirement.retire` does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, NamedTuple

from gati_contracts.env import container_env
from gati_contracts.fieldtypes import LABEL_VALUE_PATTERN
from gati_contracts.handler import GatiHandler, GatiHandlerSpec
from gati_contracts.kinds import DEPLOYMENT, GATI_HANDLER, GATI_MODULE, GROUP, KindInfo
from gati_contracts.labels import selector_labels, workload_labels
from gati_contracts.meta import CustomResource
from gati_contracts.module import GatiModule, GatiModuleSpec
from gati_contracts.ownership import (
    OwnershipError,
    controller_reference,
    is_rfc1035_label,
    owned_name,
)
from gati_contracts.problems import FieldProblem
from gati_contracts.scaling import ScalingMode
from gati_contracts.version import GatiVersion
from gati_contracts.workload import WorkloadSpec
from gati_reconciler.capabilities import Grants, grants_for
from gati_reconciler.hashing import config_hash
from gati_reconciler.path_label import path_label_value

SERVICE: Final = KindInfo("Service", "v1", "services", None)
CONFIG_MAP: Final = KindInfo("ConfigMap", "v1", "configmaps", None)
POD_DISRUPTION_BUDGET: Final = KindInfo(
    "PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", None
)
NETWORK_POLICY: Final = KindInfo("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", None)

KINDS_OWNED_BY: Final[dict[str, tuple[KindInfo, ...]]] = {
    GATI_HANDLER.kind: (CONFIG_MAP, SERVICE, DEPLOYMENT, POD_DISRUPTION_BUDGET),
    GATI_MODULE.kind: (NETWORK_POLICY, CONFIG_MAP, SERVICE, DEPLOYMENT, POD_DISRUPTION_BUDGET),
}
"""Every kind a resource of each kind *may* own. The reconciler lists these by the owner's
selector labels and deletes what the latest render no longer contains (a PodDisruptionBudget
after scaling down to one replica, the Deployment and Service of a retired version)."""

INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
HANDLER_PATH_KEY: Final = f"{GROUP}/handler-path"
"""Label (encoded by `path_label_value`) and annotation (the exact path) of a handler's objects."""
GATI_VERSION_LABEL: Final = f"{GROUP}/version"
MODULE_NAME_ANNOTATION: Final = f"{GROUP}/module-name"
CONFIG_HASH_ANNOTATION: Final = f"{GROUP}/config-hash"
"""On the pod template: ConfigMap data is not part of the template, so without this digest an
env change would update the ConfigMap and leave the running pods on the old values."""

PORT_NAME: Final = "http"
CONFIG_MAP_SUFFIX: Final = "-env"
TMP_MOUNT_PATH: Final = "/tmp"
TMP_SIZE_LIMIT: Final = "64Mi"
"""Bounds what a read-only-root module can write, so a runaway module fills its own quota and not
the node's disk."""
_LABEL_VALUE: Final = re.compile(LABEL_VALUE_PATTERN)


class ManifestError(ValueError):
    """The resource passed validation but cannot become objects; `problem` names the field."""

    def __init__(self, problem: FieldProblem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def scaler_owns_replicas(spec: GatiHandlerSpec | GatiModuleSpec) -> bool:
    """With mode `hpa` or `events` another field manager (HPA, scaler) writes the replica count."""
    return isinstance(spec, GatiHandlerSpec) and spec.scaling.mode is not ScalingMode.NONE


def deployment_replicas(spec: GatiHandlerSpec | GatiModuleSpec) -> int | None:
    """`spec.replicas` of the Deployment, or None to leave the field out of the apply.

    Applying a value the scaler changed would reset it on every reconcile; leaving it out lets
    server-side apply hand the field to whichever manager sets it.
    """
    return None if scaler_owns_replicas(spec) else spec.replicas


def may_run_several(spec: GatiHandlerSpec | GatiModuleSpec) -> bool:
    """Whether a disruption budget and spreading matter: more than one pod can exist.

    Under a scaler the count moves at run time, so the bound is `maxReplicas`; deciding by the
    current count would rewrite the pod template, and roll every pod, at each scaling step.
    """
    if isinstance(spec, GatiHandlerSpec) and scaler_owns_replicas(spec):
        return spec.scaling.max_replicas > 1
    return spec.replicas > 1


class _Frame(NamedTuple):
    """The parts of a workload's objects that its identity alone decides (names, labels, owner,
    port, sandbox), built once per identity and shared by every render of it.

    Spec changes touch an image, env or replicas, never these: reusing them spares the render
    their construction, and lets a diff of two renders pass over each of them by identity
    without comparing its contents. Each shared value sits at most once in any one object (two
    places in one object get equal copies), so an object still dumps as plain YAML, without
    anchors and aliases.
    """

    config_map_name: str
    annotations: dict[str, str]
    config_map_metadata: dict[str, Any]
    deployment_metadata: dict[str, Any]
    """Also the PodDisruptionBudget's and the NetworkPolicy's, which share the name."""
    template_labels: dict[str, str]
    match_selector: dict[str, Any]
    """`{"matchLabels": ...}` of the Deployment, the PodDisruptionBudget, the NetworkPolicy."""
    spread: list[dict[str, Any]]
    ports: list[dict[str, Any]]
    security: dict[str, Any]
    service: dict[str, Any]
    disruption_budget: dict[str, Any]
    network_policy: dict[str, Any] | None
    """Modules only."""
    component: str
    sandbox: Grants | None
    """Module grants; None for handlers, which run restricted but with a writable root."""


FRAMES_KEPT: Final = 4096
"""Identities whose frame is kept (as many as the reconciler keeps renders); past this the
oldest is built again when next rendered."""
_frames: dict[tuple[Any, ...], _Frame] = {}
_evicting: Final = threading.Lock()
"""Renders may run in threads (kopf's handlers in the benchmark's baseline); lookups are atomic
dict reads, but finding and dropping the oldest entry takes several steps."""


def render(resource: GatiHandler | GatiModule) -> list[dict[str, Any]]:
    """The objects of any workload resource, without a GatiVersion's naming overrides.

    Immutable and shared, as the module says: never change what this returns."""
    if isinstance(resource, GatiHandler):
        return render_handler(resource)
    return render_module(resource)


def render_handler(
    handler: GatiHandler, version: GatiVersion | None = None
) -> list[dict[str, Any]]:
    """ConfigMap, Service, Deployment and (when several pods may run) a PodDisruptionBudget.

    `version`, the handler's GatiVersion when there is one, may name the Deployment and Service.
    Immutable and shared, as the module says.
    """
    spec = handler.spec
    deployment_name, service_name = _handler_names(handler, version)
    frame = _frame_of(
        handler,
        (spec.port, spec.version, spec.handler_path, deployment_name, service_name),
        lambda: _frame(
            handler,
            spec.port,
            component="handler",
            version=spec.version,
            extra_labels={
                HANDLER_PATH_KEY: path_label_value(spec.handler_path),
                GATI_VERSION_LABEL: spec.version,
            },
            annotations={HANDLER_PATH_KEY: spec.handler_path},
            sandbox=None,
            deployment_name=deployment_name,
            service_name=service_name,
        ),
    )
    return _render(frame, spec)


def render_module(module: GatiModule) -> list[dict[str, Any]]:
    """As a handler, plus a read-only root and a NetworkPolicy, opened only by capabilities.

    Immutable and shared, as the module says."""
    spec = module.spec
    grants = grants_for(spec.capabilities)
    tag = _image_tag(spec.image)
    frame = _frame_of(
        module,
        (spec.port, tag, spec.module_name, grants),
        lambda: _frame(
            module,
            spec.port,
            component="module",
            version=tag,
            extra_labels={},
            annotations={MODULE_NAME_ANNOTATION: spec.module_name},
            sandbox=grants,
        ),
    )
    assert frame.network_policy is not None  # built for every frame with a sandbox
    return [frame.network_policy, *_render(frame, spec)]


def _frame_of(
    resource: CustomResource, inputs: tuple[Any, ...], build: Callable[[], _Frame]
) -> _Frame:
    """The frame kept for `resource`'s identity and the other `inputs` its frame is built from,
    or `build()`'s, kept. A resource the frame refuses (no namespace, no uid) raises each time."""
    metadata = resource.metadata
    key = (resource.kind, resource.api_version, metadata.name, metadata.namespace, metadata.uid)
    key += inputs
    frame = _frames.get(key)
    if frame is not None:
        return frame
    frame = build()
    with _evicting:
        if len(_frames) >= FRAMES_KEPT:
            del _frames[next(iter(_frames))]
        _frames[key] = frame
    return frame


def _frame(
    resource: CustomResource,
    port: int,
    *,
    component: str,
    version: str | None,
    extra_labels: dict[str, str],
    annotations: dict[str, str],
    sandbox: Grants | None,
    deployment_name: str | None = None,
    service_name: str | None = None,
) -> _Frame:
    name = resource.metadata.name
    kind = _kind_info(resource)
    namespace = _namespace(resource)
    owner_reference = _owner_reference(resource)
    labels = workload_labels(kind, name, version)
    labels[INSTANCE_LABEL] = name
    labels[COMPONENT_LABEL] = component
    labels.update(extra_labels)
    own_name = "" if deployment_name and service_name else owned_name(name)
    deployment_name = deployment_name or own_name
    service_name = service_name or own_name
    config_map_name = owned_name(deployment_name, CONFIG_MAP_SUFFIX)
    selector = selector_labels(kind, name)

    def metadata(object_name: str) -> dict[str, Any]:
        return {
            "name": object_name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference],
        }

    deployment_metadata = metadata(deployment_name)
    match_selector = {"matchLabels": selector}
    return _Frame(
        config_map_name=config_map_name,
        annotations=annotations,
        config_map_metadata=metadata(config_map_name),
        deployment_metadata=deployment_metadata,
        template_labels=dict(labels),
        match_selector=match_selector,
        spread=_spread(selector),
        ports=[{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        security=_security(sandbox),
        service=_service(metadata(service_name), selector, port),
        disruption_budget=_disruption_budget(deployment_metadata, match_selector),
        network_policy=(
            None
            if sandbox is None
            else _network_policy(deployment_metadata, match_selector, port, sandbox)
        ),
        component=component,
        sandbox=sandbox,
    )


def _render(frame: _Frame, spec: GatiHandlerSpec | GatiModuleSpec) -> list[dict[str, Any]]:
    data = _config_data(spec)
    several = may_run_several(spec)
    objects = [
        {
            "apiVersion": CONFIG_MAP.api_version,
            "kind": CONFIG_MAP.kind,
            "metadata": frame.config_map_metadata,
            "data": data,
        },
        frame.service,
        _deployment(frame, spec, data, several),
    ]
    if several:
        objects.append(frame.disruption_budget)
    return objects


def _kind_info(resource: CustomResource) -> KindInfo:
    return GATI_HANDLER if isinstance(resource, GatiHandler) else GATI_MODULE


def _namespace(resource: CustomResource) -> str:
    namespace = resource.metadata.namespace
    if namespace is None:
        raise ManifestError(
            FieldProblem(
                "metadata.namespace", "is required; render the object as the API server returned it"
            )
        )
    return namespace


def _owner_reference(resource: CustomResource) -> dict[str, Any]:
    try:
        return controller_reference(resource)
    except OwnershipError as error:
        raise ManifestError(error.problem) from error


def _handler_names(
    handler: GatiHandler, version: GatiVersion | None
) -> tuple[str | None, str | None]:
    if version is None:
        return None, None
    if version.spec.handler_ref.name != handler.metadata.name:
        raise ManifestError(
            FieldProblem(
                "spec.handlerRef.name",
                f"names {version.spec.handler_ref.name!r}, not the handler "
                f"{handler.metadata.name!r} being rendered",
            )
        )
    service_name = version.spec.service_name
    if service_name is not None and not is_rfc1035_label(service_name):
        raise ManifestError(
            FieldProblem(
                "spec.serviceName",
                f"{service_name!r} must start with a letter: a Service name is an RFC 1035 "
                "label, such as orders-v2",
            )
        )
    return version.spec.deployment_name, service_name


def _image_tag(image: str) -> str | None:
    """The tag of `registry:5000/app:1.4.0` (`1.4.0`) when it is a valid label value."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    _, colon, tag = last.partition(":")
    if colon and len(tag) <= 63 and _LABEL_VALUE.fullmatch(tag):
        return tag
    return None


def _config_data(spec: WorkloadSpec) -> dict[str, str]:
    """Plain values only: a Secret's value must never be copied out of the Secret."""
    return {
        name: entry.value for name, entry in sorted(spec.env.items()) if entry.value is not None
    }


def _container_env(frame: _Frame, spec: WorkloadSpec, data: dict[str, str]) -> list[dict[str, Any]]:
    """Plain values (`data`, the ConfigMap's) by reference into the ConfigMap, Secret
    references as written.

    Sorted by name, so the user's key order cannot cause a diff; every entry is a `valueFrom`,
    so order carries no `$(VAR)` expansion meaning.
    """
    references = {name: e for name, e in spec.env.items() if e.value_from is not None}
    entries = _config_map_env(frame.config_map_name, tuple(data))  # data is sorted by name
    if not references:
        return entries
    return sorted([*entries, *container_env(references)], key=lambda entry: str(entry["name"]))


@lru_cache(maxsize=FRAMES_KEPT)
def _config_map_env(config_map: str, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Shared between renders: a change of env values (most env changes) keeps the names, so
    the container's env is the very list the render before held."""
    return [
        {"name": name, "valueFrom": {"configMapKeyRef": {"name": config_map, "key": name}}}
        for name in names
    ]


def _resources(spec: WorkloadSpec) -> dict[str, Any]:
    resources = spec.resources
    if not (resources.requests or resources.limits):
        return {}  # most specs set none; serializing the empty model cost a tenth of a render
    return {key: value for key, value in resources.to_wire().items() if value}


def _security(sandbox: Grants | None) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"drop": ["ALL"]}
    if sandbox is not None and sandbox.linux_capabilities:
        capabilities["add"] = list(sandbox.linux_capabilities)
    security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": capabilities,
        "privileged": False,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if sandbox is not None:
        security["readOnlyRootFilesystem"] = not sandbox.writable_root
    return security


# TCP probes: the port is all the spec promises; an HTTP path would be a guess.
_READINESS: Final = {"tcpSocket": {"port": PORT_NAME}, "periodSeconds": 5, "failureThreshold": 3}
_LIVENESS: Final = {
    "tcpSocket": {"port": PORT_NAME},
    "initialDelaySeconds": 10,
    "periodSeconds": 10,
    "failureThreshold": 3,
}
_TMP_MOUNTS: Final = [{"name": "tmp", "mountPath": TMP_MOUNT_PATH}]
_TMP_VOLUMES: Final = [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}]
_POD_SECURITY: Final = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
_STRATEGY: Final = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


def _container(frame: _Frame, spec: WorkloadSpec, data: dict[str, str]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": frame.component,
        "image": spec.image,
        "ports": frame.ports,
    }
    env = _container_env(frame, spec, data)
    if env:
        container["env"] = env
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    container["readinessProbe"] = _READINESS
    container["livenessProbe"] = _LIVENESS
    if frame.sandbox is not None:
        container["volumeMounts"] = _TMP_MOUNTS
    container["securityContext"] = frame.security
    return container


def _spread(selector: dict[str, str]) -> list[dict[str, Any]]:
    """Across nodes, then zones. `ScheduleAnyway`: a small cluster must still get its capacity,
    and with `maxUnavailable: 0` a pod that cannot schedule would stall every rollout."""
    return [
        {
            "maxSkew": 1,
            "topologyKey": topology_key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for topology_key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
    ]


def _deployment(
    frame: _Frame, spec: GatiHandlerSpec | GatiModuleSpec, data: dict[str, str], several: bool
) -> dict[str, Any]:
    """`data`, the ConfigMap's, is referenced by the container and digested on the template;
    `several`: `may_run_several(spec)`."""
    pod_spec: dict[str, Any] = {
        # Neither handlers nor modules talk to the Kubernetes API; a mounted token would only
        # widen what a compromised pod can do. Service links would add env vars for every
        # Service in the namespace, which with many handlers is thousands of variables.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _POD_SECURITY,
        "containers": [_container(frame, spec, data)],
    }
    if frame.sandbox is not None:
        pod_spec["volumes"] = _TMP_VOLUMES
    if several:
        pod_spec["topologySpreadConstraints"] = frame.spread
    deployment_spec: dict[str, Any] = {}
    replicas = deployment_replicas(spec)
    if replicas is not None:
        deployment_spec["replicas"] = replicas
    deployment_spec["selector"] = frame.match_selector
    deployment_spec["strategy"] = _STRATEGY
    deployment_spec["template"] = {
        "metadata": {
            "labels": frame.template_labels,
            "annotations": {**frame.annotations, CONFIG_HASH_ANNOTATION: config_hash(data)},
        },
        "spec": pod_spec,
    }
    return {
        "apiVersion": DEPLOYMENT.api_version,
        "kind": DEPLOYMENT.kind,
        "metadata": frame.deployment_metadata,
        "spec": deployment_spec,
    }


def _service(metadata: dict[str, Any], selector: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": SERVICE.api_version,
        "kind": SERVICE.kind,
        "metadata": metadata,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": PORT_NAME, "port": port, "targetPort": PORT_NAME, "protocol": "TCP"}
            ],
        },
    }


def _disruption_budget(metadata: dict[str, Any], match_selector: dict[str, Any]) -> dict[str, Any]:
    """`maxUnavailable: 1` rather than `minAvailable`: it never blocks a drain outright, and
    `AlwaysAllow` lets a drain evict pods that are not ready anyway (a crash loop must not
    hold a node hostage)."""
    return {
        "apiVersion": POD_DISRUPTION_BUDGET.api_version,
        "kind": POD_DISRUPTION_BUDGET.kind,
        "metadata": metadata,
        "spec": {
            "maxUnavailable": 1,
            "selector": match_selector,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


_DNS_EGRESS: Final = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
"""Cluster DNS only."""


def _network_policy(
    metadata: dict[str, Any], match_selector: dict[str, Any], port: int, grants: Grants
) -> dict[str, Any]:
    """Ingress on the module's port (from its namespace unless granted more); egress denied but
    for cluster DNS unless granted. See docs/capabilities.md for why DNS stays open."""
    ingress: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
    if not grants.open_ingress:
        ingress["from"] = [{"podSelector": {}}]
    spec: dict[str, Any] = {
        "podSelector": match_selector,
        "policyTypes": ["Ingress"] if grants.open_egress else ["Ingress", "Egress"],
        "ingress": [ingress],
    }
    if not grants.open_egress:
        spec["egress"] = [_DNS_EGRESS]
    return {
        "apiVersion": NETWORK_POLICY.api_version,
        "kind": NETWORK_POLICY.kind,
        "metadata": metadata,
        "spec": spec,
    }
