"""Server-side apply and field ownership, as the API server's structured-merge-diff does them.

Two controllers writing one object (here the scaler owning `spec.replicas`, the reconciler
owning the rest) only coexist if the server tracks who set which field: an apply that drops
a field removes it only when nobody else owns it, and an apply that would overwrite someone
else's field is refused with a 409 naming both unless forced. Clients see this through
`metadata.managedFields` and the conflict message, so both follow the real encoding.

The algorithm mirrors structured-merge-diff: merge the applied configuration into the live
object, prune what this manager applied last time but not now (unless another manager owns
it), then compare old and new to find conflicts and take ownership away from managers whose
fields changed. Ordinary writes (`record_update`) take ownership of every field they change.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gati_kubesim import bounded
from gati_kubesim.fieldpath import (
    Path,
    PathElement,
    decode_fields,
    encode_fields,
    field_element,
    fields_node,
    index_element,
    key_element,
    parse_dotted,
    path_string,
    value_element,
)
from gati_kubesim.jsonvalue import json_copy, json_equal
from gati_kubesim.mergeschema import ZERO_STRUCTS, ListType, Node, kind_node
from gati_kubesim.patch import PatchError
from gati_kubesim.timestamps import now_rfc3339

_MISSING: Any = object()
_SCALARS = frozenset({str, int, float, bool})
# Sorted keys make equal JSON values encode to equal bytes, whatever their key order.
_canonical = msgspec.json.Encoder(order="sorted").encode

# Decoded `fieldsV1` of stored entries, by the id of the dict they were read from (held here,
# so the id cannot be reused while cached). Stored objects are never mutated, and every write
# reads the managedFields of the object it replaces: decoding them once per stored version
# instead of once per write is a large share of a small write's cost.
_DECODED: dict[int, tuple[dict[str, Any], frozenset[Path]]] = {}
_DECODED_MAX = 32_768

# The same the other way round: encoded `fieldsV1` by the set of paths it spells. A status
# writer owns the same paths in every object of a kind (values are not in them, only list
# keys such as a condition's type), so the reconciler's and the Deployment controller's
# status entries of a thousand objects share one encoding each instead of building their
# own. Shared for the reason the cache above holds: stored objects are never mutated.
_ENCODED: dict[frozenset[Path], dict[str, Any]] = {}
_ENCODED_MAX = 4_096

# Fields the server sets itself; nobody owns them (the API server's strip set).
_STRIPPED: frozenset[Path] = frozenset(
    {
        parse_dotted("apiVersion"),
        parse_dotted("kind"),
        parse_dotted("metadata"),
        *(
            parse_dotted(f"metadata.{name}")
            for name in (
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "clusterName",
                "generation",
                "managedFields",
                "resourceVersion",
            )
        ),
    }
)

# The same fields as a tree of names, for walks that meet them on the way down.
_STRIPPED_TRIE: dict[str, Any] = {}
for _path in _STRIPPED:
    _level = _STRIPPED_TRIE
    for _kind, _name in _path:
        _level = _level.setdefault(str(_name), {})

BEFORE_FIRST_APPLY = "before-first-apply"
# The API server keeps at most this many Update entries, folding the oldest into one
# `ancient-changes` entry per apiVersion, so managedFields cannot grow with every new
# updater name (a client per pod, a timestamped manager, ...).
MAX_UPDATE_MANAGERS = 10
ANCIENT_CHANGES = "ancient-changes"


class ApplyError(PatchError):
    """The applied configuration cannot be typed (missing list keys, duplicates, bad shape).

    A `PatchError`, since apply is one of the patch content types: endpoints that already
    turn patch errors into a Status answer these too. (The real API server answers list-key
    problems with a 500 "failed to create typed patch object"; `message` names the field.)
    """


@dataclass(frozen=True)
class Conflict:
    """One field another manager owns, as a cause of the 409 (`FieldManagerConflict`)."""

    manager: str
    field: str
    message: str


class ApplyConflict(Exception):
    """Applying would change fields other managers own; `force` takes them over instead."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        self.message = _conflict_message(conflicts)
        super().__init__(self.message)


@dataclass
class _Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str
    time: str | None
    fields: set[Path] = field(default_factory=set)
    # The stored `fieldsV1` this entry was read from and the paths it held: while `fields`
    # still equals them, writing the entry back reuses that encoding.
    stored: tuple[dict[str, Any], frozenset[Path]] | None = None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return _identity(self.manager, self.operation, self.api_version, self.subresource)

    def describe(self) -> str:
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def _identity(
    manager: str, operation: str, api_version: str, subresource: str
) -> tuple[str, str, str, str]:
    """Appliers keep one entry across versions; updaters get one per apiVersion, as upstream."""
    return (manager, operation, api_version if operation == "Update" else "", subresource)


# --------------------------------------------------------------------------- public API


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    gvk: str,
    subresource: str | None = None,
    *,
    schema: Mapping[str, Any] | None = None,
    reset_fields: Collection[str] = (),
    now: str | None = None,
) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None when creating).

    `schema` (a CRD's openAPIV3Schema) supplies list types for custom resources.
    `reset_fields` are dotted paths the endpoint ignores (`status` on the main resource of a
    kind with a status subresource, `spec` on `/status`): they keep their live value and
    nobody gains ownership of them. Raises `ApplyConflict` or `ApplyError`.

    The result is a private copy, except that a create's shares subtrees with `applied`:
    hand over a body nothing else holds.
    """
    if not isinstance(applied, dict):
        raise ApplyError("an apply patch must be a JSON or YAML object")
    if not manager:
        raise ApplyError("fieldManager is required for apply requests; set ?fieldManager=")
    if applied.get("metadata", {}).get("managedFields"):
        raise ApplyError("metadata.managedFields must be nil in an apply request")
    node = kind_node(gvk, schema)
    resets = [parse_dotted(p) for p in reset_fields]
    api_version = str(applied.get("apiVersion") or (live or {}).get("apiVersion") or "")
    if live is None and all(len(r) == 1 for r in resets):
        return _apply_create(applied, manager, api_version, subresource, node, resets, now)
    live_body = _body(live) if live is not None else None
    managers = _decode_managers(live)
    if live_body is not None and not managers:
        owned = _owned(_to_field_set(live_body, node, strict=False), resets)
        if owned:
            entry = _Entry(
                BEFORE_FIRST_APPLY, "Update", api_version, "", now or now_rfc3339(), owned
            )
            managers[entry.identity] = entry
    config = _body(applied)
    config_set = _owned(_to_field_set(config, node, strict=True), resets)
    base = live_body if live_body is not None else {}
    merged = _merge(base, config, node)

    me = _identity(manager, "Apply", api_version, subresource or "")
    previous = managers.get(me)
    last_set = previous.fields if previous is not None else set()
    managers[me] = _Entry(
        manager,
        "Apply",
        api_version,
        subresource or "",
        previous.time if previous is not None else None,
        config_set,
        previous.stored if previous is not None else None,
    )
    merged = _prune(merged, managers, last_set, config_set, node)
    merged = _restore(merged, base, resets)

    # Other managers that own a field this endpoint can change: the diff only decides what
    # they lose or clash over. With none (every create, a sole applier's re-apply, an apply
    # to a Deployment whose only other manager writes its status) it would be a walk of the
    # whole object for nothing.
    others = [
        identity
        for identity, entry in managers.items()
        if identity != me and _outside(entry.fields, resets)
    ]
    conflicts: dict[tuple[str, str, str, str], set[Path]] = {}
    removed: set[Path] = set()
    if others:
        added, modified, removed = _changes(base, merged, gvk, node, resets)
        for identity in others:
            clash = managers[identity].fields & (added | modified)
            if clash:
                conflicts[identity] = clash
    if conflicts and not force:
        raise ApplyConflict(
            [
                Conflict(
                    managers[i].manager, path_string(p), f"conflict with {managers[i].describe()}"
                )
                for i in sorted(conflicts)
                for p in sorted(conflicts[i], key=path_string)
            ]
        )
    for identity in others:
        managers[identity].fields -= conflicts.get(identity, set()) | removed
    if merged != base or previous is None:
        managers[me].time = now or now_rfc3339()
    # A private copy: admission defaults fields in place, and `merged` shares subtrees with
    # the stored object. A create has none to share: `merged` is built from `applied` alone,
    # which the caller hands over (the API server's decoded request body).
    return _with_managed_fields(merged if live is None else json_copy(merged), managers)


def _apply_create(
    applied: dict[str, Any],
    manager: str,
    api_version: str,
    subresource: str | None,
    node: Node,
    resets: list[Path],
    now: str | None,
) -> dict[str, Any]:
    """`server_side_apply` of an object that does not exist yet, whose resets are top-level.

    With nothing live there is nobody to merge with, prune for or conflict with: the applier
    owns exactly its configuration, and one walk (`_applied_fields`) finds those paths and
    their `fieldsV1` together, instead of a set of paths that is then sorted and encoded.
    Every object an operator creates by apply comes this way; each handler's three differ
    (their owner reference's uid is a key), so no encoding is shared between them.
    """
    config = _body(applied)
    tops = frozenset(str(r[0][1]) for r in resets)
    config_set: set[Path] = set()
    fields_v1 = _applied_fields(config, node, (), config_set, _STRIPPED_TRIE, tops) or {}
    merged = _restore(_merge({}, config, node), {}, resets)
    out = dict(merged)
    out["metadata"] = dict(out.get("metadata") or {})
    owned = _stripped(config_set)
    if not owned:
        return _with_entries(out, [])
    entry = _Entry(manager, "Apply", api_version, subresource or "", now or now_rfc3339())
    _remember_decoded(fields_v1, frozenset(owned))  # the next write over it reads it back
    return _with_entries(out, [_encode_entry(entry, fields_v1)])


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    subresource: str | None = None,
    *,
    gvk: str | None = None,
    schema: Mapping[str, Any] | None = None,
    reset_fields: Collection[str] = (),
    now: str | None = None,
) -> dict[str, Any]:
    """`new` with managedFields recording that `manager` wrote it over `old` (None on create).

    The result shares everything but its top level and metadata with `new`; `old` is read
    as a stored object is, never mutated afterwards (its managedFields decoding is cached).

    The writer gains every field it added or changed and takes those fields away from other
    managers, which is what later makes an applier's stale value a conflict. A client may
    replace managedFields wholesale on the main resource (a list holding one empty entry
    clears them), as upstream allows.
    """
    if not isinstance(new, dict):
        raise ApplyError("the object must be a JSON object")
    kind_id = gvk or f"{new.get('apiVersion', '')}/{new.get('kind', '')}"
    node = kind_node(kind_id, schema)
    resets = [parse_dotted(p) for p in reset_fields]
    api_version = str(new.get("apiVersion") or (old or {}).get("apiVersion") or "")
    managers = _decode_managers(old)
    supplied = (new.get("metadata") or {}).get("managedFields")
    if (
        supplied
        and subresource is None
        and supplied != (old or {}).get("metadata", {}).get("managedFields")
    ):
        # Unreadable client-supplied entries fall back to the stored ones, as upstream.
        with contextlib.suppress(ApplyError):
            managers = _decode_entries(supplied)
    if old is None and not managers and not resets:
        entry = _Entry(manager, "Update", api_version, subresource or "", now or now_rfc3339())
        return _record_create(new, entry, kind_id, node)
    old_body = _body(old) if old is not None else {}
    new_body = _restore(_body(new), old_body, resets)
    added, modified, removed = _changes(old_body, new_body, kind_id, node, resets)
    changed = added | modified
    for entry in managers.values():
        entry.fields -= changed | removed
    if _stripped(changed):
        me = _identity(manager, "Update", api_version, subresource or "")
        entry = managers.get(me) or _Entry(manager, "Update", api_version, subresource or "", None)
        entry.fields |= changed
        entry.time = now or now_rfc3339()
        managers[me] = entry
    _cap_updaters(managers)
    return _with_managed_fields(new_body, managers)


def _cap_updaters(managers: dict[tuple[str, str, str, str], _Entry]) -> None:
    """Fold the oldest Update entries into `ancient-changes` until at most the cap remain.

    As upstream: oldest first (by time, then identity), and the first old entry of each
    apiVersion becomes that version's bucket once a second one joins it; the bucket takes
    the time of the newest entry merged in. Apply entries are never folded.
    """
    updaters = [i for i, e in managers.items() if e.operation == "Update"]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda i: (managers[i].time or "", i))
    remaining = len(updaters)
    first_of_version: dict[str, tuple[str, str, str, str]] = {}
    for identity in updaters:
        if remaining <= MAX_UPDATE_MANAGERS:
            break
        entry = managers[identity]
        version = entry.api_version
        bucket = _identity(ANCIENT_CHANGES, "Update", version, "")
        first = first_of_version.setdefault(version, identity)
        if first == identity or identity == bucket:
            continue
        if bucket not in managers:
            oldest = managers.pop(first)
            managers[bucket] = _Entry(ANCIENT_CHANGES, "Update", version, "", None, oldest.fields)
        managers[bucket].fields |= entry.fields
        managers[bucket].time = entry.time
        del managers[identity]
        remaining -= 1


def managed_fields_of(obj: Mapping[str, Any]) -> dict[tuple[str, str, str], set[str]]:
    """Who owns what, as `{(manager, operation, subresource): {".spec.replicas", ...}}`.

    For tests and diagnostics: easier to assert on than the raw fieldsV1 encoding.
    """
    return {
        (e.manager, e.operation, e.subresource): {path_string(p) for p in e.fields}
        for e in _decode_managers(obj).values()
    }


# ------------------------------------------------------------------- managedFields codec


def _decode_managers(obj: Mapping[str, Any] | None) -> dict[tuple[str, str, str, str], _Entry]:
    if obj is None:
        return {}
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    try:
        return _decode_entries(entries, stored=True)
    except ApplyError:
        # Stored entries that cannot be read are dropped rather than failing every write,
        # the same recovery the API server applies to corrupt managedFields.
        return {}


def _decode_entries(entries: Any, stored: bool = False) -> dict[tuple[str, str, str, str], _Entry]:
    """Entries by identity. `stored` ones come from an object in the store, which nobody
    mutates: their decoding is cached and their encoding reused while unchanged."""
    if not isinstance(entries, list):
        raise ApplyError("metadata.managedFields must be a list")
    out: dict[tuple[str, str, str, str], _Entry] = {}
    for index, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise ApplyError(f"metadata.managedFields[{index}] must be an object")
        if not raw.get("manager") and not raw.get("fieldsV1"):
            continue
        raw_fields = raw.get("fieldsV1", {})
        try:
            decoded = _decode_stored(raw_fields) if stored else frozenset(decode_fields(raw_fields))
        except ValueError as exc:
            raise ApplyError(f"metadata.managedFields[{index}].fieldsV1: {exc}") from exc
        entry = _Entry(
            str(raw.get("manager", "")),
            str(raw.get("operation", "Update")),
            str(raw.get("apiVersion", "")),
            str(raw.get("subresource", "")),
            raw.get("time"),
            set(decoded),
            (raw_fields, decoded) if stored else None,
        )
        existing = out.get(entry.identity)
        if existing is not None:
            existing.fields |= decoded
            existing.stored = None
        else:
            out[entry.identity] = entry
    return out


def _decode_stored(fields: Any) -> frozenset[Path]:
    """`decode_fields` of a stored object's entry, read once per stored dict."""
    cached = _DECODED.get(id(fields))
    if cached is not None and cached[0] is fields:
        return cached[1]
    decoded = frozenset(decode_fields(fields))
    _remember_decoded(fields, decoded)
    return decoded


def _remember_decoded(fields: dict[str, Any], decoded: frozenset[Path]) -> None:
    _DECODED[id(fields)] = (fields, decoded)
    bounded.trim(_DECODED, _DECODED_MAX)


def _with_managed_fields(
    body: dict[str, Any], managers: Mapping[tuple[str, str, str, str], _Entry]
) -> dict[str, Any]:
    """`body` with these entries: a new top level and metadata, sharing the rest with `body`."""
    live = [(e, owned) for e in managers.values() if (owned := _stripped(e.fields))]
    live.sort(
        key=lambda eo: (
            eo[0].operation,
            eo[0].time or "",
            eo[0].manager,
            eo[0].api_version,
            eo[0].subresource,
        )
    )
    encoded = [_encode_entry(e, _fields_v1(e, owned)) for e, owned in live]
    out = dict(body)
    out["metadata"] = dict(out.get("metadata") or {})
    return _with_entries(out, encoded)


def _fields_v1(entry: _Entry, owned: set[Path]) -> dict[str, Any]:
    if entry.stored is not None and entry.stored[1] == owned:
        return entry.stored[0]
    paths = frozenset(owned)
    encoded = _ENCODED.get(paths)
    if encoded is None:
        encoded = encode_fields(paths)
        _ENCODED[paths] = encoded
        bounded.trim(_ENCODED, _ENCODED_MAX)
    if _DECODED.get(id(encoded), (None,))[0] is not encoded:
        _remember_decoded(encoded, paths)  # the next write over it reads it back
    return encoded


def _with_entries(body: dict[str, Any], encoded: list[dict[str, Any]]) -> dict[str, Any]:
    """`body` (a private copy) with these managedFields entries, or none."""
    metadata = body.setdefault("metadata", {})
    if encoded:
        metadata["managedFields"] = encoded
    else:
        metadata.pop("managedFields", None)
    return body


def _encode_entry(e: _Entry, fields_v1: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "manager": e.manager,
        "operation": e.operation,
        "apiVersion": e.api_version,
    }
    if e.time:
        item["time"] = e.time
    item["fieldsType"] = "FieldsV1"
    item["fieldsV1"] = fields_v1
    if e.subresource:
        item["subresource"] = e.subresource
    return item


def _record_create(new: dict[str, Any], entry: _Entry, gvk: str, node: Node) -> dict[str, Any]:
    """`record_update` of a new object that nobody owns yet, without the diff.

    Creates are the bulk of writes, and with nothing before them the writer owns exactly
    what a diff against nothing would find: every field, less what Go's zero structs
    already hold and the server-set fields. One walk finds it, already in `fieldsV1` form;
    `record_update(None, x) == record_update({}, x)` is the property test that holds the
    two paths together.
    """
    body = _body(new)
    body["metadata"] = dict(body.get("metadata") or {})
    fields_v1 = _new_fields(body, node, ZERO_STRUCTS.get(gvk, {}), _STRIPPED_TRIE)
    return _with_entries(body, [_encode_entry(entry, fields_v1)] if fields_v1 else [])


def _new_fields(
    value: Any, node: Node, zero: Mapping[str, Any] | None, strip: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The `fieldsV1` node of a value that did not exist before, None if nothing is owned.

    `zero` is the Go zero struct at this place (its members are new, the struct is not; zero
    structs hold only non-atomic structs, so a non-object sent there is owned whole);
    `strip` the server-set fields below it (not owned, though what is under them may be).
    """
    owned = zero is None and strip is None
    if isinstance(value, dict) and (zero is not None or not node.atomic):
        out: dict[str, Any] = {}
        for key in sorted(value):
            sub = _new_fields(
                value[key],
                node.child(key),
                None if zero is None else zero.get(key),
                None if strip is None else strip.get(key),
            )
            if sub is not None:
                out["f:" + key] = sub
        return ({".": {}, **out} if owned else out) if out else ({} if owned else None)
    if isinstance(value, list) and zero is None and (list_type := _granular_list(node)) is not None:
        item_node = node.item()
        items = [
            (element, _new_fields(item, item_node, None, None) or {})
            for element, item in _items(value, list_type, False, ())
        ]
        return fields_node(items, owned) if items else ({} if owned else None)
    return {} if strip is None else None


def _body(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow view of `obj` without managedFields; nothing here mutates it."""
    body = dict(obj)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        body["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return body


def _conflict_message(conflicts: list[Conflict]) -> str:
    if len(conflicts) == 1:
        only = conflicts[0]
        return f"Apply failed with 1 conflict: {only.message}: {only.field}"
    lines: list[str] = []
    seen: list[str] = []
    for conflict in conflicts:
        if conflict.message not in seen:
            seen.append(conflict.message)
    for message in seen:
        lines.append(message.replace("conflict with", "conflicts with", 1) + ":")
        lines.extend(f"- {c.field}" for c in conflicts if c.message == message)
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


# ------------------------------------------------------------------------ field sets


def _owned(paths: set[Path], resets: list[Path]) -> set[Path]:
    """Drop fields under the endpoint's reset paths: nobody gains or loses them there."""
    if not resets:
        return set(paths)
    if all(len(r) == 1 for r in resets):
        # The usual case (`status` on the main resource): one membership test per path
        # instead of a generator over the resets.
        tops = {r[0] for r in resets}
        return {p for p in paths if not (p and p[0] in tops)}
    return {p for p in paths if not any(p[: len(r)] == r for r in resets)}


def _outside(paths: set[Path], resets: list[Path]) -> bool:
    """Whether any of `paths` lies outside the endpoint's reset paths."""
    if not resets:
        return bool(paths)
    return any(not any(p[: len(r)] == r for r in resets) for p in paths)


def _stripped(paths: set[Path]) -> set[Path]:
    """Drop server-set fields. Only when recording: pruning needs `metadata.name` owned."""
    return paths - _STRIPPED


def _item_element(
    item: Any, list_type: ListType, index: int, strict: bool, where: Path
) -> PathElement:
    if list_type.kind == "set" and not isinstance(item, dict | list):
        return value_element(item)
    if list_type.kind == "map" and isinstance(item, dict):
        key: dict[str, Any] = {}
        defaults = dict(list_type.key_defaults)
        for name in list_type.keys:
            if name in item and item[name] is not None:
                key[name] = item[name]
            elif name in defaults:
                key[name] = defaults[name]
            elif strict:
                raise ApplyError(
                    f"{path_string(where)}[{index}]: associative list with keys has an element "
                    f'that omits key field "{name}" (and doesn\'t have default value)'
                )
            else:
                return index_element(index)
        return key_element(key)
    if strict:
        raise ApplyError(
            f"{path_string(where)}[{index}]: expected "
            + ("an object" if list_type.kind == "map" else "a scalar")
            + f" in this {list_type.kind}-type list"
        )
    return index_element(index)


def _items(
    values: list[Any], list_type: ListType, strict: bool, where: Path
) -> list[tuple[PathElement, Any]]:
    out: list[tuple[PathElement, Any]] = []
    seen: set[PathElement] = set()
    for index, item in enumerate(values):
        element = _item_element(item, list_type, index, strict, where)
        if element in seen:
            if strict:
                raise ApplyError(
                    f"{path_string(where)}: duplicate entries for key {path_string((element,))}"
                )
            element = index_element(index)
        seen.add(element)
        out.append((element, item))
    return out


def _granular_list(node: Node) -> ListType | None:
    lt = node.list_type
    return lt if lt is not None and lt.kind != "atomic" and not node.atomic else None


def _to_field_set(value: Any, node: Node, strict: bool) -> set[Path]:
    out: set[Path] = set()
    _collect(value, node, (), strict, out)
    return out


def _collect(value: Any, node: Node, path: Path, strict: bool, out: set[Path]) -> None:
    if isinstance(value, dict) and not node.atomic:
        for key, child in value.items():
            child_path = (*path, ("f", key))
            if child is None or type(child) in _SCALARS:
                out.add(child_path)  # a leaf: what the call below would add, without it
                continue
            _collect(child, node.child(key), child_path, strict, out)
            if child == {} or node.is_data_key(key):
                out.add(child_path)
        return
    if isinstance(value, list):
        list_type = _granular_list(node)
        if list_type is not None:
            for element, item in _items(value, list_type, strict, path):
                item_path = (*path, element)
                _collect(item, node.item(), item_path, strict, out)
                out.add(item_path)
            return
    if path:
        out.add(path)


def _applied_fields(
    value: Any,
    node: Node,
    path: Path,
    out: set[Path],
    strip: Mapping[str, Any] | None,
    skip: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """`_collect(value, node, path, True, out)`, returning the `fieldsV1` children of the
    node at `path` as the server orders them (None for a leaf), less the paths `strip` names
    (a tree of names as `_STRIPPED_TRIE`); members in `skip` (top-level resets) are walked
    for their errors only. Walked in `_collect`'s order, so the same bad item is named;
    each node's children are sorted after. Strict items are keyed or set values, never
    positions, so their elements sort as their strings do.
    """
    if isinstance(value, dict) and not node.atomic:
        children: dict[str, Any] = {}
        for key, child in value.items():
            child_path = (*path, ("f", key))
            if key in skip:
                _collect(child, node.child(key), child_path, True, set())
                continue
            child_strip = None if strip is None else strip.get(key)
            if child is None or type(child) in _SCALARS:
                out.add(child_path)
                if child_strip is None:
                    children["f:" + key] = {}
                continue
            sub = _applied_fields(child, node.child(key), child_path, out, child_strip)
            kept = sub is None or child == {} or node.is_data_key(key)
            if kept:
                out.add(child_path)
                kept = child_strip is None
            if sub:
                children["f:" + key] = {".": {}, **sub} if kept else sub
            elif kept:
                children["f:" + key] = {}
        return dict(sorted(children.items()))
    if isinstance(value, list):
        list_type = _granular_list(node)
        if list_type is not None:
            item_node = node.item()
            children = {}
            for element, item in _items(value, list_type, True, path):
                item_path = (*path, element)
                sub = _applied_fields(item, item_node, item_path, out, None)
                out.add(item_path)
                children[f"{element[0]}:{element[1]}"] = {".": {}, **sub} if sub else {}
            return dict(sorted(children.items()))
    if path:
        out.add(path)
    return None


def _ensure_named(paths: set[Path], node: Node) -> set[Path]:
    """Add the struct fields leading to each path, the way upstream decides what to prune."""
    out = set(paths)
    nodes: dict[Path, Node] = {(): node}
    for path in paths:
        for depth in range(len(path) - 1, 0, -1):
            if path[:depth] in nodes:
                break
        else:
            depth = 0
        current = nodes[path[:depth]]
        for index in range(depth, len(path) - 1):
            kind, payload = path[index]
            prefix = path[: index + 1]
            if kind == "f":
                if not current.is_data_key(str(payload)):
                    out.add(prefix)
                current = current.child(str(payload))
            else:
                current = current.item()
            nodes[prefix] = current
    return out


# --------------------------------------------------------------------- value operations


def _merge(live: Any, config: Any, node: Node) -> Any:
    """Apply `config` over `live`: maps by key, keyed and set lists by item, atomics replaced.

    Both are private copies, so the result shares their subtrees instead of copying again.
    """
    if isinstance(live, dict) and isinstance(config, dict) and not node.atomic:
        out = dict(live)
        for key, value in config.items():
            if key in live and not (value is None or type(value) in _SCALARS):
                out[key] = _merge(live[key], value, node.child(key))
            else:
                out[key] = value  # new, or a scalar: the applied value replaces the live one
        return out
    list_type = _granular_list(node)
    if isinstance(live, list) and isinstance(config, list) and list_type is not None:
        return _merge_list(live, config, node, list_type)
    return config


def _merge_list(live: list[Any], config: list[Any], node: Node, list_type: ListType) -> list[Any]:
    """Shared items take the applied order; live-only items keep their place around them."""
    lhs = _items(live, list_type, False, ())
    rhs = _items(config, list_type, True, ())
    seen_l = dict(reversed(lhs))
    seen_r = dict(reversed(rhs))
    shared = [e for e, _ in rhs if e in seen_l]
    next_shared = shared.pop(0) if shared else None
    done: set[PathElement] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(lhs) or ri < len(rhs):
        if li < len(lhs) and ri < len(rhs):
            element = lhs[li][0]
            if element == rhs[ri][0]:
                done.add(element)
                out.append(_merge(seen_l[element], seen_r[element], node.item()))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if element in seen_r and next_shared is not None and next_shared != element:
                li += 1
                continue
        if li < len(lhs):
            element, item = lhs[li]
            if element not in seen_r:
                out.append(item)
                li += 1
                continue
            if element in done:
                li += 1
                continue
        if ri < len(rhs):
            element, item = rhs[ri]
            done.add(element)
            if element in seen_l:
                out.append(_merge(seen_l[element], item, node.item()))
            else:
                out.append(item)
            ri += 1
            if next_shared is not None and next_shared == element:
                next_shared = shared.pop(0) if shared else None
    return out


def _remove(value: Any, paths: set[Path], node: Node) -> Any:
    """`value` without the subtrees at `paths` (members are removed whole)."""
    trie: dict[PathElement, Any] = {}
    for path in paths:
        level = trie
        for element in path[:-1]:
            level = level.setdefault(element, {}).setdefault(None, {})
        level.setdefault(path[-1], {})[True] = True
    return _remove_walk(value, trie, node)


def _remove_walk(value: Any, trie: dict[Any, Any], node: Node) -> Any:
    if isinstance(value, dict) and not node.atomic:
        out = {}
        for key, child in value.items():
            entry = trie.get(field_element(key))
            if entry is None:
                out[key] = child
            elif not entry.get(True):
                out[key] = _remove_walk(child, entry.get(None, {}), node.child(key))
        return out
    list_type = _granular_list(node)
    if isinstance(value, list) and list_type is not None:
        kept = []
        for element, item in _items(value, list_type, False, ()):
            entry = trie.get(element)
            if entry is None:
                kept.append(item)
            elif not entry.get(True):
                kept.append(_remove_walk(item, entry.get(None, {}), node.item()))
        return kept
    return value


def _prune(
    merged: dict[str, Any],
    managers: Mapping[tuple[str, str, str, str], _Entry],
    last_set: set[Path],
    applied_set: set[Path],
    node: Node,
) -> dict[str, Any]:
    """Remove what the applier owned before but no longer applies, unless someone owns it.

    Nothing goes when the applier still applies every field it applied before (the usual
    re-apply): those fields, and the fields leading to them, are all still owned.
    """
    if not last_set or last_set <= applied_set:
        return merged
    last = _ensure_named(last_set, node)
    merged_set = _ensure_named(_to_field_set(merged, node, strict=False), node)
    pruned = _remove(merged, last, node)
    owned: set[Path] = set()
    for entry in managers.values():
        owned |= entry.fields
    pruned_set = _ensure_named(_to_field_set(pruned, node, strict=False), node)
    pruned = _remove(merged, merged_set - (pruned_set | _ensure_named(owned, node)), node)
    pruned_set = _ensure_named(_to_field_set(pruned, node, strict=False), node)
    result: dict[str, Any] = _remove(merged, (merged_set - pruned_set) & last, node)
    return result


def _restore(new: dict[str, Any], old: Mapping[str, Any], resets: list[Path]) -> dict[str, Any]:
    """Put reset fields back to their old values (or remove them): the endpoint ignores them.

    Copies the maps along each reset path rather than writing into them, since `new` shares
    its subtrees with the caller's objects.
    """
    for path in resets:
        new = _restore_one(new, old, [str(payload) for _, payload in path])
    return new


def _restore_one(new: dict[str, Any], old: Any, names: list[str]) -> dict[str, Any]:
    head, rest = names[0], names[1:]
    source = old.get(head, _MISSING) if isinstance(old, dict) else _MISSING
    out = dict(new)
    if not rest:
        if source is _MISSING:
            out.pop(head, None)
        else:
            out[head] = json_copy(source)
        return out
    child = new.get(head)
    if isinstance(child, dict):
        out[head] = _restore_one(child, source, rest)
    elif source is not _MISSING:
        out[head] = _restore_one({}, source, rest)
    return out


def _overlay(skeleton: Mapping[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """`value` with the skeleton's structs it lacks; `value` itself when it lacks none, so
    a subtree a write shares with the object it replaces stays the same object and the
    comparison passes over it by identity (a status write's spec)."""
    out: dict[str, Any] | None = None
    for key, sub in skeleton.items():
        present = value.get(key, _MISSING)
        if present is _MISSING:
            filled = json_copy(sub)
        elif isinstance(present, dict):
            filled = _overlay(sub, present)
            if filled is present:
                continue
        else:
            continue
        if out is None:
            out = dict(value)
        out[key] = filled
    return value if out is None else out


def _overlay_both(
    skeleton: Mapping[str, Any], old: dict[str, Any], new: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`_overlay` of both sides of a diff, passing over what they share.

    A member both sides hold as one object (or both lack) would get the same structs on
    both and compare equal whatever they are, so it is left as it is: a status write shares
    its whole spec with the object it replaces, and the Deployment's skeleton is mostly
    spec. Only the members that differ are walked.
    """
    old_out: dict[str, Any] | None = None
    new_out: dict[str, Any] | None = None
    for key, sub in skeleton.items():
        left = old.get(key, _MISSING)
        right = new.get(key, _MISSING)
        if left is right:
            continue
        if isinstance(left, dict) and isinstance(right, dict):
            left_filled, right_filled = _overlay_both(sub, left, right)
        else:
            left_filled = json_copy(sub) if left is _MISSING else left
            right_filled = json_copy(sub) if right is _MISSING else right
            if isinstance(left, dict):
                left_filled = _overlay(sub, left)
            if isinstance(right, dict):
                right_filled = _overlay(sub, right)
        if left_filled is not left:
            old_out = dict(old) if old_out is None else old_out
            old_out[key] = left_filled
        if right_filled is not right:
            new_out = dict(new) if new_out is None else new_out
            new_out[key] = right_filled
    return (old if old_out is None else old_out), (new if new_out is None else new_out)


def _changes(
    old: dict[str, Any], new: dict[str, Any], gvk: str, node: Node, resets: list[Path]
) -> tuple[set[Path], set[Path], set[Path]]:
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    skeleton = ZERO_STRUCTS.get(gvk)
    if skeleton:
        # Go's never-absent structs present, so creating an object does not "add" `spec`.
        old, new = _overlay_both(skeleton, old, new)
    _compare(old, new, node, (), (added, modified, removed))
    return _owned(added, resets), _owned(modified, resets), _owned(removed, resets)


def _compare(
    lhs: Any,
    rhs: Any,
    node: Node,
    path: Path,
    out: tuple[set[Path], set[Path], set[Path]],
) -> None:
    if lhs is rhs:
        return  # a write shares what it did not touch with the object it replaces
    if lhs is _MISSING:
        _every_path(rhs, node, path, out[0])
        return
    if rhs is _MISSING:
        _every_path(lhs, node, path, out[2])
        return
    same_type = type(lhs) is type(rhs)
    if (
        same_type
        and isinstance(lhs, dict | list)
        and lhs == rhs
        and _canonical(lhs) == _canonical(rhs)
    ):
        # Python's == also holds for True and 1; equal canonical bytes are equal JSON.
        return
    list_type = _granular_list(node)
    if same_type and isinstance(rhs, dict) and not node.atomic:
        modified = out[1]
        for key in {**lhs, **rhs}:
            left = lhs.get(key, _MISSING)
            right = rhs.get(key, _MISSING)
            if left is right:
                continue
            kind = type(left)
            if kind is type(right) and kind in _SCALARS:
                # Most members are scalars of one type on both sides: equal, or changed,
                # without a call of their own (`==` is JSON's equality within one type).
                if left != right:
                    modified.add((*path, ("f", key)))
                continue
            _compare(left, right, node.child(key), (*path, field_element(key)), out)
    elif same_type and isinstance(rhs, list) and list_type is not None:
        if _aligned(lhs, rhs, list_type):
            # Item i on both sides has the same key: pairs need no key elements to match,
            # and a pair both sides hold equal (most conditions of a status write) none at all.
            item_node = node.item()
            for left, right in zip(lhs, rhs, strict=True):
                if left is right or (left == right and _canonical(left) == _canonical(right)):
                    continue
                element = key_element({list_type.keys[0]: right[list_type.keys[0]]})
                _compare(left, right, item_node, (*path, element), out)
            return
        left_items = dict(reversed(_items(lhs, list_type, False, path)))
        right_items = dict(reversed(_items(rhs, list_type, False, path)))
        for element in {**left_items, **right_items}:
            _compare(
                left_items.get(element, _MISSING),
                right_items.get(element, _MISSING),
                node.item(),
                (*path, element),
                out,
            )
    elif path and not json_equal(lhs, rhs):
        out[1].add(path)


def _aligned(lhs: list[Any], rhs: list[Any], list_type: ListType) -> bool:
    """Whether two lists keyed by one field hold the same string keys in the same places,
    each once: then `_items` would pair item i with item i under the same key element."""
    if list_type.kind != "map" or len(list_type.keys) != 1 or len(lhs) != len(rhs):
        return False
    name = list_type.keys[0]
    seen: set[str] = set()
    for left, right in zip(lhs, rhs, strict=True):
        if type(left) is not dict or type(right) is not dict:
            return False
        key = left.get(name)
        if type(key) is not str or type(right.get(name)) is not str or key != right[name]:
            return False
        seen.add(key)
    return len(seen) == len(lhs)


def _every_path(value: Any, node: Node, path: Path, out: set[Path]) -> None:
    """Every node of a subtree only one side of `_compare` has, which it would find added or
    removed node by node: a first status write adds all of its status."""
    if isinstance(value, dict) and not node.atomic:
        for key, child in value.items():
            child_path = (*path, ("f", key))
            if child is None or type(child) in _SCALARS:
                out.add(child_path)  # a leaf: what the call below would add, without it
                continue
            _every_path(child, node.child(key), child_path, out)
    elif isinstance(value, list) and (list_type := _granular_list(node)) is not None:
        item_node = node.item()
        for element, item in _items(value, list_type, False, path):
            _every_path(item, item_node, (*path, element), out)
    if path:
        out.add(path)
