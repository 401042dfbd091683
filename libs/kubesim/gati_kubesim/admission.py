"""Admission: the validation and defaulting a write goes through before it is stored.

Built-in kinds get the checks and defaults clients rely on (a Deployment's selector must
match its template; a Service gets a clusterIP); custom resources get their CRD's structural
schema: pruning, defaults, validation. Every rejection is a 422 whose causes name the field.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable
from typing import Any

from gati_kubesim import bounded, crds, openapi
from gati_kubesim.errors import Cause, bad_request, invalid
from gati_kubesim.registry import ResourceType
from gati_kubesim.selectors import (
    SelectorError,
    labels_match,
    parse_label_selector,
    valid_label_key,
    valid_label_value,
)

Obj = dict[str, Any]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Namespaces and Services become DNS labels; everything else may be a DNS subdomain.
_LABEL_NAMED = {("", "namespaces"), ("", "services")}
_TYPE_META = ("apiVersion", "kind", "metadata")
# How many admitted top-level fields of custom resources are remembered (see `_kept`).
_ADMITTED_MAX = 8192


class Admission:
    """Validation and defaults; custom resources are checked by `openapi`."""

    def __init__(self) -> None:
        self._service_ips = ipaddress.ip_network("10.96.0.0/12").hosts()
        next(self._service_ips)  # .1 is the `kubernetes` service in a real cluster
        # Top-level fields of custom resources this admission produced, by id, with the
        # schema they were admitted under (held, so an id is not reused while remembered).
        self._admitted: dict[int, tuple[Any, Any]] = {}

    def admit(
        self,
        rt: ResourceType,
        obj: Obj,
        old: Obj | None,
        field_validation: str = "Warn",
        warnings: list[str] | None = None,
    ) -> Obj:
        """The object to store, or 422 naming every invalid field.

        Fields a CRD schema does not declare are pruned; `field_validation` says what the
        client hears about them, as the real server's `fieldValidation` parameter does:
        `Strict` refuses the write (400), `Warn` adds a warning, `Ignore` stays silent.
        """
        causes = check_metadata(rt, obj, old)
        if rt.custom:
            if rt.admit is not None:
                kept = self._kept(obj, old, rt.schema)
                view = {k: openapi.ADMITTED if k in kept else v for k, v in obj.items()}
                unknown: list[str] = []
                obj, schema_causes = rt.admit(view, unknown)
                if unknown and field_validation == "Strict":
                    listed = ", ".join(f'unknown field "{f}"' for f in unknown)
                    raise bad_request(
                        f'{rt.kind} in version "{rt.version}" cannot be handled as a '
                        f"{rt.kind}: strict decoding error: {listed}"
                    )
                if unknown and field_validation == "Warn" and warnings is not None:
                    warnings += [f'unknown field "{f}"' for f in unknown]
                causes += schema_causes
                if kept and old is not None:
                    obj.update((key, old[key]) for key in kept)
                if not causes:
                    self._remember(obj, rt.schema)
        else:
            hook = _BUILTIN.get((rt.group, rt.plural))
            if hook is not None:
                causes += hook(self, obj, old)
        if causes:
            raise invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)
        return obj

    def _kept(self, obj: Obj, old: Obj | None, schema: Any) -> set[str]:
        """Top-level fields a write leaves as the stored object has them (a status write's
        spec, an update's status), admitted under this same schema when that was stored:
        pruning and defaulting them again changes nothing and validating them again finds
        nothing, so they are passed through (the real server ratchets unchanged fields too).
        """
        if old is None:
            return set()
        kept = set()
        for key, value in obj.items():
            if key in _TYPE_META or old.get(key) is not value:
                continue
            seen = self._admitted.get(id(value))
            if seen is not None and seen[0] is value and seen[1] is schema:
                kept.add(key)
        return kept

    def _remember(self, obj: Obj, schema: Any) -> None:
        for key, value in obj.items():
            if key not in _TYPE_META and isinstance(value, dict | list):
                self._admitted.pop(id(value), None)  # the newest again
                self._admitted[id(value)] = (value, schema)
        bounded.trim(self._admitted, _ADMITTED_MAX)

    def next_cluster_ip(self) -> str:
        return str(next(self._service_ips))


def check_metadata(rt: ResourceType, obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Causes against the object's name, labels and annotations.

    Labels or annotations that are the stored object's very dicts (a status write, an
    update that left them alone) were checked when stored, and stored objects are never
    mutated, so they are not checked again."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [Cause("metadata", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        causes.append(
            Cause("metadata.name", "FieldValueRequired", "name or generateName is required")
        )
    elif not isinstance(name, str):
        causes.append(Cause("metadata.name", "FieldValueInvalid", "must be a string"))
    elif (rt.group, rt.plural) in _LABEL_NAMED:
        if len(name) > 63 or not _DNS_LABEL.match(name):
            causes.append(
                Cause(
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: {name!r}: a lowercase RFC 1123 label must consist of lower "
                    "case alphanumeric characters or '-', and must start and end with an "
                    "alphanumeric character (at most 63 characters)",
                )
            )
    elif (rt.group, rt.plural) != ("", "events") and (
        len(name) > 253 or not _DNS_SUBDOMAIN.match(name)
    ):
        causes.append(
            Cause(
                "metadata.name",
                "FieldValueInvalid",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower "
                "case alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character",
            )
        )
    old_meta = old.get("metadata") if old is not None else None
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None or (isinstance(old_meta, dict) and old_meta.get(field) is value):
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            causes.append(
                Cause(f"metadata.{field}", "FieldValueInvalid", "must be a map of string to string")
            )
            continue
        for key, text in value.items():
            if not valid_label_key(key):
                causes.append(
                    Cause(
                        f"metadata.{field}",
                        "FieldValueInvalid",
                        f"Invalid value: {key!r}: name part must consist of alphanumeric "
                        "characters, '-', '_' or '.' (at most 63), with an optional DNS "
                        "subdomain prefix and '/'",
                    )
                )
            elif field == "labels" and not valid_label_value(text):
                causes.append(
                    Cause(
                        "metadata.labels",
                        "FieldValueInvalid",
                        f"Invalid value: {text!r}: a valid label must be an empty string or "
                        "consist of alphanumeric characters, '-', '_' or '.' (at most 63)",
                    )
                )
    annotations = meta.get("annotations")
    if (
        isinstance(annotations, dict)
        and not (isinstance(old_meta, dict) and old_meta.get("annotations") is annotations)
        and sum(len(str(k)) + len(str(v)) for k, v in annotations.items()) > 256 * 1024
    ):
        causes.append(
            Cause("metadata.annotations", "FieldValueTooLong", "must have at most 262144 bytes")
        )
    return causes


def _namespace(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    spec.setdefault("finalizers", ["kubernetes"])
    if old is None:
        obj["status"] = {"phase": "Active"}
    return []


def _secret(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
    causes: list[Cause] = []
    data = obj.get("data") or {}
    for k, v in data.items():
        # The API server decodes data into bytes with Go's base64 decoder, which skips \r and
        # \n (kustomize wraps long values), and serves the bytes re-encoded without them.
        try:
            raw = base64.b64decode(str(v).replace("\r", "").replace("\n", ""), validate=True)
        except ValueError:
            causes.append(Cause(f"data[{k}]", "FieldValueInvalid", "must be base64 encoded"))
            continue
        data[k] = base64.b64encode(raw).decode()
    return causes


def _deployment(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"maxUnavailable": "25%", "maxSurge": "25%"})
    causes = _pod_workload(spec)
    if old is None or not isinstance(old.get("status"), dict):
        obj.setdefault("status", {})
    return causes


def _statefulset(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy.setdefault("type", "RollingUpdate")
        strategy.setdefault("rollingUpdate", {"partition": 0})
    spec.setdefault(
        "persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"}
    )
    causes = _pod_workload(spec)
    # No controller acts on StatefulSets: the status is the one a fresh object gets.
    if old is None or not isinstance(old.get("status"), dict):
        obj["status"] = {"replicas": 0, "availableReplicas": 0}
    return causes


def _pod_workload(spec: Obj) -> list[Cause]:
    """Defaults and checks shared by the kinds that stamp pods from a selector and template."""
    causes: list[Cause] = []
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    replicas = spec["replicas"]
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(
            Cause("spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0")
        )
    selector = spec.get("selector")
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict) or not selector:
        causes.append(Cause("spec.selector", "FieldValueRequired", "Required value"))
    else:
        try:
            reqs = parse_label_selector(
                ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items())
            )
        except SelectorError as exc:
            causes.append(Cause("spec.selector", "FieldValueInvalid", str(exc)))
        else:
            if not labels_match(reqs, template_labels):
                causes.append(
                    Cause(
                        "spec.template.metadata.labels",
                        "FieldValueInvalid",
                        "`selector` does not match template `labels`",
                    )
                )
    template_spec = (spec.get("template") or {}).get("spec")
    if isinstance(template_spec, dict):
        _pod_defaults(template_spec)
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
    if not containers:
        causes.append(
            Cause("spec.template.spec.containers", "FieldValueRequired", "Required value")
        )
    else:
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name"):
                causes.append(
                    Cause(
                        f"spec.template.spec.containers[{i}].name",
                        "FieldValueRequired",
                        "Required value",
                    )
                )
            if isinstance(c, dict) and not c.get("image"):
                causes.append(
                    Cause(
                        f"spec.template.spec.containers[{i}].image",
                        "FieldValueRequired",
                        "Required value",
                    )
                )
    return causes


_RBAC_GROUP = "rbac.authorization.k8s.io"


def _rules(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    """Rules the RBAC authorizer could never match are refused, as the real server does."""
    rules = obj.get("rules") or []
    if not isinstance(rules, list):
        return [Cause("rules", "FieldValueInvalid", "must be a list of PolicyRules")]
    causes: list[Cause] = []
    for i, rule in enumerate(rules):
        at = f"rules[{i}]"
        if not isinstance(rule, dict):
            causes.append(Cause(at, "FieldValueInvalid", "must be a PolicyRule object"))
            continue
        if not rule.get("verbs"):
            causes.append(
                Cause(
                    f"{at}.verbs",
                    "FieldValueRequired",
                    "Required value: verbs must contain at least one value",
                )
            )
        if rule.get("nonResourceURLs"):
            continue
        for name, what in (("apiGroups", "api group"), ("resources", "resource")):
            if not rule.get(name):
                causes.append(
                    Cause(
                        f"{at}.{name}",
                        "FieldValueRequired",
                        f"Required value: resource rules must supply at least one {what}",
                    )
                )
    return causes


def _binding(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    """A binding's roleRef names what it grants, so it must be whole and may never change."""
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        return [Cause("roleRef", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    kinds = ("Role", "ClusterRole") if obj.get("kind") == "RoleBinding" else ("ClusterRole",)
    if ref.get("apiGroup") != _RBAC_GROUP:
        causes.append(
            Cause(
                "roleRef.apiGroup",
                "FieldValueNotSupported",
                f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: '
                f'"{_RBAC_GROUP}"',
            )
        )
    if ref.get("kind") not in kinds:
        supported = ", ".join(f'"{k}"' for k in kinds)
        causes.append(
            Cause(
                "roleRef.kind",
                "FieldValueNotSupported",
                f'Unsupported value: "{ref.get("kind", "")}": supported values: {supported}',
            )
        )
    if not ref.get("name"):
        causes.append(Cause("roleRef.name", "FieldValueRequired", "Required value"))
    if old is not None and old.get("roleRef") != ref:
        causes.append(Cause("roleRef", "FieldValueInvalid", "cannot change roleRef"))
    return causes


def _pod_defaults(pod: Obj) -> None:
    """The pod-spec defaults the real server fills, so a read-back equals a real cluster's."""
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("securityContext", {})
    pod.setdefault("schedulerName", "default-scheduler")
    for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
        if not isinstance(c, dict):
            continue
        image = str(c.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for port in c.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")


def _hpa(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "FieldValueRequired", "Required value")]
    causes: list[Cause] = []
    spec.setdefault("minReplicas", 1)
    # A real server serializes the empty status a new HPA gets as {"desiredReplicas": 0} (that
    # field has no omitempty), and the official typed client refuses an HPA without it.
    if old is None or not isinstance(old.get("status"), dict):
        obj["status"] = {"desiredReplicas": 0}
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
        causes.append(
            Cause("spec.scaleTargetRef", "FieldValueRequired", "kind and name are required")
        )
    max_replicas = spec.get("maxReplicas")
    if not isinstance(max_replicas, int) or max_replicas < 1:
        causes.append(Cause("spec.maxReplicas", "FieldValueInvalid", "must be greater than 0"))
    elif isinstance(spec["minReplicas"], int) and spec["minReplicas"] > max_replicas:
        causes.append(
            Cause(
                "spec.maxReplicas",
                "FieldValueInvalid",
                "must be greater than or equal to `minReplicas`",
            )
        )
    return causes


def _service(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.setdefault("spec", {})
    causes: list[Cause] = []
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        # Assigned only when they differ: a status write carries the stored spec itself,
        # and stored objects are never written into.
        old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
        if old_ip:
            if spec.get("clusterIP") != old_ip:
                spec["clusterIP"] = old_ip
        elif spec.get("clusterIP") != "None":
            spec["clusterIP"] = adm.next_cluster_ip()
        if spec.get("clusterIPs") != [spec["clusterIP"]]:
            spec["clusterIPs"] = [spec["clusterIP"]]
    for i, port in enumerate(spec.get("ports") or []):
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            causes.append(Cause(f"spec.ports[{i}].port", "FieldValueRequired", "Required value"))
            continue
        if not 1 <= port["port"] <= 65535:
            causes.append(
                Cause(
                    f"spec.ports[{i}].port",
                    "FieldValueInvalid",
                    "must be between 1 and 65535, inclusive",
                )
            )
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    obj.setdefault("status", {"loadBalancer": {}})
    return causes


def _crd(adm: Admission, obj: Obj, old: Obj | None) -> list[Cause]:
    causes = crds.check(obj)
    if not causes:
        obj["status"] = crds.established_status(obj)
    return causes


_BUILTIN: dict[tuple[str, str], Callable[[Admission, Obj, Obj | None], list[Cause]]] = {
    ("", "namespaces"): _namespace,
    ("", "secrets"): _secret,
    ("", "services"): _service,
    ("apps", "deployments"): _deployment,
    ("apps", "statefulsets"): _statefulset,
    (_RBAC_GROUP, "roles"): _rules,
    (_RBAC_GROUP, "clusterroles"): _rules,
    (_RBAC_GROUP, "rolebindings"): _binding,
    (_RBAC_GROUP, "clusterrolebindings"): _binding,
    ("autoscaling", "horizontalpodautoscalers"): _hpa,
    ("apiextensions.k8s.io", "customresourcedefinitions"): _crd,
}
