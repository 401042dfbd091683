"""The verbs of the Kubernetes API over the store: what each request does, without HTTP.

The HTTP layer parses a request into a resource type, a namespace, a name and options and
calls one method here; tests and the simulated controllers never need this module, they go
through HTTP or the store. Status-subresource rules, namespace lifecycle checks, generateName
and patch dispatch all live here so every entry point behaves the same.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import yaml

from gati_kubesim import crds, fieldmanager, jsonpath
from gati_kubesim import patch as patches
from gati_kubesim.admission import Admission
from gati_kubesim.conversion import present
from gati_kubesim.errors import (
    ApiError,
    Cause,
    Details,
    bad_request,
    expired,
    invalid,
    not_found,
    too_large_resource_version,
)
from gati_kubesim.jsonvalue import json_copy
from gati_kubesim.reapply import ApplyRequest, Reapplies
from gati_kubesim.registry import Registry, ResourceType
from gati_kubesim.selectors import (
    Matcher,
    SelectorError,
    build_matcher,
    selector_from_label_selector,
)
from gati_kubesim.store import Obj, Store
from gati_kubesim.watch import Render, Watcher, WatchEvent, WatchHub

_decode = msgspec.json.decode
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (MERGE_PATCH, STRATEGIC_PATCH, JSON_PATCH, APPLY_PATCH)
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
# The real NamespaceLifecycle admission refuses to delete these.
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass
class WriteOptions:
    manager: str
    dry_run: bool = False
    force: bool = False
    field_validation: str = "Warn"
    # Collected for the HTTP layer, which sends them as `Warning` headers.
    warnings: list[str] = field(default_factory=list)


@dataclass
class DeleteOptions:
    propagation: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


def decode_json(raw: bytes, what: str = "request body") -> Any:
    try:
        return _decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the {what} is not valid JSON: {exc}") from exc


def _rv_int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(
            f"{what}: invalid resourceVersion {value!r}, expected an integer"
        ) from exc


class Api:
    def __init__(
        self, registry: Registry, store: Store, hub: WatchHub, admission: Admission
    ) -> None:
        self.registry = registry
        self.store = store
        self.hub = hub
        self.admission = admission
        # How long a read from a resourceVersion not reached yet waits for it (the real
        # server's watch cache waits 3s, then answers 504 ResourceVersionTooLarge).
        self.freshness_timeout = 3.0
        self._reapplies = Reapplies()
        store.listeners.append(self._on_event)

    # -- resolution ------------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            gv = f"{group}/{version}" if group else version
            raise ApiError(
                404, f"the server could not find the requested resource ({plural} in {gv})"
            )
        return rt

    def _namespace_of(self, rt: ResourceType, namespace: str) -> str:
        return namespace if rt.namespaced else ""

    def _check_namespace_open(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns_rt = self.resource("", "v1", "namespaces")
        ns = self.store.find(ns_rt, "", namespace)
        if ns is None:
            raise not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"{rt.plural} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                details=Details(name=namespace, kind="namespaces"),
            )

    # -- reads -----------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str, sub: str | None) -> Obj:
        obj = self.store.get(rt, self._namespace_of(rt, namespace), name)
        if sub == "scale":
            return self._scale_view(rt, obj)
        return present(rt, obj)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        limit: int | None,
        cont: str | None,
        resource_version: str | None = None,
        rv_match: str | None = None,
    ) -> tuple[list[Obj], dict[str, Any]]:
        """Items and list metadata (`resourceVersion`, `continue`, `remainingItemCount`).

        Every page of a paginated list shows the state at the first page's resourceVersion,
        rebuilt from watch history, so a client that lists then watches from that version
        sees each change exactly once; `resourceVersionMatch=Exact` lists at a past version.
        """
        matcher = self.matcher(rt, label_selector, field_selector)
        current = self.store.resource_version
        list_rv = current
        start: tuple[str, str] | None = None
        if rv_match is not None:
            if rv_match not in ("Exact", "NotOlderThan"):
                raise bad_request(
                    f"resourceVersionMatch: unsupported value {rv_match!r}; use Exact or "
                    "NotOlderThan"
                )
            if not resource_version:
                raise bad_request("resourceVersionMatch is forbidden unless resourceVersion is set")
            if rv_match == "Exact":
                list_rv = _rv_int(resource_version, "list")
                if list_rv > current:
                    # Exact reads go to storage, which refuses a future revision at once.
                    raise too_large_resource_version(list_rv, current)
        if cont:
            list_rv, start = self._decode_continue(rt, cont)
        objects = self._state_at(rt, list_rv, current)
        items: list[Obj] = []
        remaining = 0
        next_key: tuple[str, str] | None = None
        for key in sorted(objects):
            if (namespace and key[0] != namespace) or (start is not None and key <= start):
                continue
            shown = present(rt, objects[key])
            if matcher is not None and not matcher(shown):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(shown)
            next_key = key
        meta_out: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if remaining and next_key is not None:
            token = msgspec.json.encode({"rv": list_rv, "start": list(next_key)})
            meta_out["continue"] = base64.urlsafe_b64encode(token).decode()
            meta_out["remainingItemCount"] = remaining
        return items, meta_out

    async def wait_until_fresh(
        self, resource_version: str | None, rv_match: str | None, what: str
    ) -> None:
        """Hold a list or watch from a resourceVersion the server has not reached yet
        until a write reaches it, or answer 504 `ResourceVersionTooLarge` after
        `freshness_timeout`; serving it at once would show a client older state than it
        asked for, and a watch would replay events it has already seen."""
        if not resource_version or resource_version == "0" or rv_match == "Exact":
            return
        rv = _rv_int(resource_version, what)
        if rv <= self.store.resource_version:
            return
        if not await self.hub.wait_for(rv, self.freshness_timeout):
            raise too_large_resource_version(rv, self.store.resource_version)

    def _state_at(self, rt: ResourceType, rv: int, current: int) -> dict[tuple[str, str], Obj]:
        """Objects as they were at `rv`: the live ones with later events undone (410 when
        history no longer reaches back that far)."""
        objects = dict(self.store.bucket(rt))
        if rv >= current:
            return objects
        for ev in reversed(self.hub.since(rt.storage_key, rv, current)):
            meta = ev.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if ev.type == "ADDED" or ev.old is None:
                objects.pop(key, None)
            else:
                objects[key] = ev.old
        return objects

    def _decode_continue(self, rt: ResourceType, cont: str) -> tuple[int, tuple[str, str]]:
        try:
            data = _decode(base64.urlsafe_b64decode(cont.encode()))
            list_rv, start = int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
        except (
            binascii.Error,
            msgspec.DecodeError,
            KeyError,
            TypeError,
            ValueError,
            IndexError,
        ) as exc:
            raise bad_request(f"continue: invalid continue token {cont!r}") from exc
        if list_rv < self.hub.floor(rt.storage_key):
            raise expired(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."
            )
        return list_rv, start

    def matcher(
        self, rt: ResourceType, label_selector: str | None, field_selector: str | None
    ) -> Matcher | None:
        try:
            return build_matcher(label_selector, field_selector, rt.field_labels)
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc

    # -- watch -----------------------------------------------------------------------------

    def open_watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        matcher: Matcher | None,
        resource_version: str | None,
        send_initial: bool | None,
        bookmarks: bool,
        render: Render | None,
    ) -> Watcher:
        """Register a watcher, queueing what it must see first.

        No await happens between reading history and subscribing, so no event can fall in
        between. `resourceVersion` unset or "0" starts with the current objects as ADDED;
        a specific version replays history after it, or fails with 410 once compacted.
        """
        watcher = Watcher(
            namespace=namespace,
            matcher=matcher,
            render=render,
            convert=lambda obj: present(rt, obj),
        )
        initial = send_initial if send_initial is not None else resource_version in (None, "", "0")
        current = self.store.resource_version
        if initial:
            for obj in self.store.items(rt, namespace):
                shown = present(rt, obj)
                if matcher is None or matcher(shown):
                    watcher.push_object("ADDED", shown)
            if bookmarks and send_initial:
                watcher.push_object("BOOKMARK", self.bookmark(rt, initial_end=True))
        elif resource_version:
            for ev in self.hub.since(rt.storage_key, _rv_int(resource_version, "watch"), current):
                watcher.offer(ev)
        self.hub.subscribe(rt.storage_key, watcher)
        return watcher

    def bookmark(self, rt: ResourceType, initial_end: bool = False) -> Obj:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

    # -- writes ----------------------------------------------------------------------------

    def _body_object(self, rt: ResourceType, body: Any, namespace: str) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(f"the body of a {rt.kind} request must be a JSON object")
        kind = body.get("kind")
        if kind is not None and kind != rt.kind:
            raise bad_request(
                f"the kind {kind!r} in the body does not match the resource {rt.kind!r}"
            )
        api_version = body.get("apiVersion")
        if api_version is not None and api_version != rt.api_version:
            raise bad_request(
                f"the apiVersion {api_version!r} in the body does not match {rt.api_version!r}"
            )
        obj: Obj = dict(body)
        obj["kind"] = rt.kind
        obj["apiVersion"] = rt.api_version
        meta = obj.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise invalid(
                rt.kind, rt.group, "", [Cause("metadata", "FieldValueInvalid", "must be an object")]
            )
        meta = obj["metadata"] = dict(meta)
        if rt.namespaced:
            sent = meta.get("namespace")
            if sent and namespace and sent != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace or sent or ""
        else:
            meta.pop("namespace", None)
        return obj

    def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions) -> Obj:
        obj = self._body_object(rt, body, namespace)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(_NAME_CHARS, k=5))
            meta["name"] = f"{meta['generateName']}{suffix}"
        if rt.namespaced and not meta.get("namespace"):
            raise bad_request("a namespace must be given for a namespaced resource")
        if rt.namespaced:
            self._check_namespace_open(rt, meta["namespace"])
        for k in ("resourceVersion", "uid"):
            meta.pop(k, None)
        if opts.manager:
            # A plain create records its own entry; only apply (no manager here) brings one.
            meta.pop("managedFields", None)
        if rt.has_status:
            if rt.custom:
                obj.pop("status", None)
            else:
                obj["status"] = {}
        obj = self.admission.admit(rt, obj, None, opts.field_validation, opts.warnings)
        self._check_crd_names(rt, obj)
        return present(rt, self.store.create(rt, obj, opts.manager, opts.dry_run))

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        sub: str | None,
        body: Any,
        opts: WriteOptions,
    ) -> Obj:
        if sub == "scale":
            return self._update_scale(rt, namespace, name, body, opts)
        obj = self._body_object(rt, body, namespace)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        meta["name"] = name
        live = self.store.get(rt, self._namespace_of(rt, namespace), name)
        return self._write(rt, live, obj, sub, opts)

    def _write(
        self, rt: ResourceType, live: Obj, obj: Obj, sub: str | None, opts: WriteOptions
    ) -> Obj:
        """Shared tail of update and patch: status rules, admission, then the store."""
        if sub == "status":
            status = obj.get("status")
            managed = obj["metadata"].get("managedFields")
            rv = obj["metadata"].get("resourceVersion")
            obj = {k: v for k, v in live.items() if k != "status"}
            obj["metadata"] = dict(live["metadata"])
            if rv:
                obj["metadata"]["resourceVersion"] = rv
            if managed is not None:
                obj["metadata"]["managedFields"] = managed
            if status is not None:
                obj["status"] = status
        elif rt.has_status:
            if "status" in live:
                obj["status"] = live["status"]
            else:
                obj.pop("status", None)
        # Status writes are validated too: a CRD's schema constrains its status as well.
        obj = self.admission.admit(rt, obj, live, opts.field_validation, opts.warnings)
        self._check_crd_names(rt, obj)
        return present(rt, self.store.replace(rt, obj, opts.manager, sub, opts.dry_run))

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        sub: str | None,
        content_type: str,
        raw: bytes,
        opts: WriteOptions,
    ) -> tuple[Obj, bool]:
        """The patched object and whether apply created it."""
        ns = self._namespace_of(rt, namespace)
        if content_type == APPLY_PATCH:
            return self._apply(rt, ns, name, sub, raw, opts)
        live = self.store.get(rt, ns, name)
        target = self._scale_view(rt, live) if sub == "scale" else json_copy(present(rt, live))
        patched = self._apply_patch(rt, target, content_type, raw)
        if sub == "scale":
            return self._update_scale(rt, namespace, name, patched, opts), False
        if not isinstance(patched.get("metadata"), dict):
            raise invalid(
                rt.kind, rt.group, name, [Cause("metadata", "FieldValueRequired", "Required value")]
            )
        obj = self._body_object(rt, patched, ns)
        obj["metadata"]["name"] = name
        return self._write(rt, live, obj, sub, opts), False

    def _apply_patch(self, rt: ResourceType, target: Obj, content_type: str, raw: bytes) -> Obj:
        body = decode_json(raw, "patch")
        try:
            if content_type == MERGE_PATCH:
                if not isinstance(body, dict):
                    raise bad_request("a merge patch must be a JSON object")
                result: Obj = patches.json_merge_patch(target, body)
            elif content_type == STRATEGIC_PATCH:
                if rt.custom:
                    raise ApiError(
                        415,
                        f"the body of the request was in an unknown format - accepted media "
                        f"types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
                    )
                if not isinstance(body, dict):
                    raise bad_request("a strategic merge patch must be a JSON object")
                if patches.strategic_merge_supported(rt.gvk):
                    result = patches.strategic_merge_patch(target, body, rt.gvk)
                else:
                    # Built-ins without merge-keyed lists (Lease, NetworkPolicy, ...): strategic
                    # merge reduces to a merge patch, as on the real server.
                    result = patches.json_merge_patch(target, body)
            else:
                if not isinstance(body, list):
                    raise bad_request("a JSON patch must be a JSON array of operations")
                result = patches.json_patch(target, body)
        except patches.PatchError as exc:
            raise ApiError(422, exc.message, reason="Invalid") from exc
        if not isinstance(result, dict):
            raise ApiError(422, "the patched object is not a JSON object", reason="Invalid")
        return result

    def _apply(
        self, rt: ResourceType, ns: str, name: str, sub: str | None, raw: bytes, opts: WriteOptions
    ) -> tuple[Obj, bool]:
        if not opts.manager or opts.manager.startswith("\0"):
            raise bad_request("PATCH, application/apply-patch+yaml: fieldManager is required")
        live = self.store.find(rt, ns, name)
        request = ApplyRequest(opts.manager, opts.force, opts.field_validation, sub, raw)
        if live is not None:
            # Before the body is read: the checks below passed for these very bytes.
            warnings = self._reapplies.unchanged(rt, live, request)
            if warnings is not None:
                opts.warnings += warnings
                return present(rt, live), False
        try:
            # Clients mostly send JSON (a subset of YAML), which msgspec reads many times
            # faster than the YAML parser; anything else is read as YAML.
            applied = _decode(raw)
        except msgspec.DecodeError:
            try:
                applied = yaml.safe_load(raw.decode())
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise bad_request(f"the apply patch is not valid YAML or JSON: {exc}") from exc
        if not isinstance(applied, dict):
            raise bad_request("an apply patch must be an object with apiVersion, kind and metadata")
        for key, want in (("apiVersion", rt.api_version), ("kind", rt.kind)):
            if applied.get(key) != want:
                raise bad_request(f"{key}: the apply patch must set {key} to {want!r}")
        meta = applied.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") not in (None, name):
            raise bad_request(f"metadata.name: the apply patch must name the object {name!r}")
        meta["name"] = name
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise bad_request(
                    "metadata.namespace: the namespace of the provided object does not match "
                    "the namespace sent on the request"
                )
            meta["namespace"] = ns
        warned = len(opts.warnings)
        try:
            # server_side_apply builds new dicts and never writes into the stored object.
            merged: Obj = fieldmanager.server_side_apply(
                present(rt, live) if live is not None else None,
                applied,
                opts.manager,
                opts.force,
                rt.gvk,
                sub,
                schema=rt.schema,
                reset_fields=_reset_fields(rt, sub, applied),
            )
        except fieldmanager.ApplyConflict as exc:
            raise _apply_conflict(exc) from exc
        except fieldmanager.ApplyError as exc:
            raise bad_request(f"the apply patch cannot be applied: {exc.message}") from exc
        except patches.PatchError as exc:
            raise ApiError(422, exc.message, reason="Invalid") from exc
        no_record = dataclasses.replace(opts, manager="")
        if live is None:
            if sub is not None:
                raise not_found(rt.group, rt.plural, name)
            merged["metadata"].pop("resourceVersion", None)
            result = self.create(rt, ns, merged, no_record), True
        else:
            obj = self._body_object(rt, merged, ns)
            obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            result = self._write(rt, live, obj, sub, no_record), False
        stored = self.store.find(rt, ns, name)
        if not opts.dry_run and stored is not None:
            self._reapplies.remember(rt, stored, request, opts.warnings[warned:])
        return result

    # -- scale -----------------------------------------------------------------------------

    def _scale_view(self, rt: ResourceType, obj: Obj) -> Obj:
        if rt.scale is None:
            raise not_found(rt.group, f"{rt.plural}/scale", obj["metadata"]["name"])
        meta = obj["metadata"]
        spec_replicas = jsonpath.first(obj, rt.scale.spec_replicas_path)
        status: dict[str, Any] = {
            "replicas": jsonpath.first(obj, rt.scale.status_replicas_path) or 0
        }
        if rt.scale.label_selector_path:
            sel = jsonpath.first(obj, rt.scale.label_selector_path)
            if isinstance(sel, dict):
                sel = selector_from_label_selector(sel)
            if sel:
                status["selector"] = sel
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": spec_replicas or 0},
            "status": status,
        }

    def _update_scale(
        self, rt: ResourceType, namespace: str, name: str, body: Any, opts: WriteOptions
    ) -> Obj:
        if rt.scale is None:
            raise not_found(rt.group, f"{rt.plural}/scale", name)
        if not isinstance(body, dict):
            raise bad_request("the body of a scale request must be a Scale object")
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                "autoscaling",
                name,
                [Cause("spec.replicas", "FieldValueInvalid", "must be an integer >= 0")],
            )
        live = self.store.get(rt, self._namespace_of(rt, namespace), name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        new = json_copy(live)
        jsonpath.set_path(new, rt.scale.spec_replicas_path, replicas)
        if rv:
            new["metadata"]["resourceVersion"] = rv
        stored = self._write(rt, live, new, None, opts)
        return self._scale_view(rt, stored)

    # -- delete ----------------------------------------------------------------------------

    def delete(self, rt: ResourceType, namespace: str, name: str, opts: DeleteOptions) -> Obj:
        if rt.storage_key == ("", "namespaces") and name in IMMORTAL_NAMESPACES:
            raise ApiError(
                403,
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                details=Details(name=name, kind="namespaces"),
            )
        result = self.store.delete(
            rt,
            self._namespace_of(rt, namespace),
            name,
            propagation=opts.propagation,
            precondition_uid=opts.uid,
            precondition_rv=opts.resource_version,
            dry_run=opts.dry_run,
        )
        if not result.removed:
            return present(rt, result.obj)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": result.obj["metadata"]["uid"],
            },
        }

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, matcher: Matcher | None, opts: DeleteOptions
    ) -> list[Obj]:
        out: list[Obj] = []
        for obj in list(self.store.items(rt, namespace)):
            if matcher is not None and not matcher(obj):
                continue
            meta = obj["metadata"]
            result = self.store.delete(
                rt, meta.get("namespace", ""), meta["name"], opts.propagation, dry_run=opts.dry_run
            )
            out.append(present(rt, result.obj))
        return out

    # -- CRDs ------------------------------------------------------------------------------

    def _check_crd_names(self, rt: ResourceType, obj: Obj) -> None:
        """A CRD may not take a built-in resource's place; checked before it is stored."""
        if rt.storage_key != CRD_KEY:
            return
        clash = self.registry.builtin_clash(crds.resource_types(obj))
        if clash is not None:
            raise invalid(
                rt.kind,
                rt.group,
                obj["metadata"]["name"],
                [
                    Cause(
                        "spec.names.plural", "FieldValueInvalid", f"{clash} is a built-in resource"
                    )
                ],
            )

    def _on_event(self, rt: ResourceType, event: WatchEvent) -> None:
        """Forget the apply behind a version no longer stored; keep the registry in step
        with stored CRDs, serving a new one at once."""
        if event.old is not None:
            self._reapplies.forget(event.old)
        if rt.storage_key != CRD_KEY:
            return
        name = event.obj["metadata"]["name"]
        if event.type == "DELETED":
            self._drop_crd(name, event.obj)
        elif not event.obj["metadata"].get("deletionTimestamp"):
            self.registry.register_crd(name, crds.resource_types(event.obj))

    def _drop_crd(self, name: str, crd: Mapping[str, Any]) -> None:
        spec = crd["spec"]
        for rt in self.registry.versions_of(spec["group"], spec["names"]["plural"])[:1]:
            for obj in list(self.store.items(rt)):
                self.store.remove_now(rt, obj)
            self.hub.drop(rt.storage_key)
            self.store.drop_bucket(rt)
        self.registry.unregister_crd(name)


def _reset_fields(rt: ResourceType, sub: str | None, applied: Obj) -> list[str]:
    """What this endpoint ignores in an apply: status on the main resource of a kind with a
    status subresource; everything but status (and metadata) on `/status`."""
    if sub == "status":
        return [k for k in applied if k not in ("apiVersion", "kind", "metadata", "status")]
    return ["status"] if rt.has_status else []


def _apply_conflict(exc: fieldmanager.ApplyConflict) -> ApiError:
    """409 Conflict with one `FieldManagerConflict` cause per contested field."""
    causes = [Cause(c.field, "FieldManagerConflict", c.message) for c in exc.conflicts]
    return ApiError(409, exc.message, reason="Conflict", details=Details(causes=causes))
