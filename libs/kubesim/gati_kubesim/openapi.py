"""Structural-schema handling for custom resources: pruning, defaulting and validation.

A CRD's `openAPIV3Schema` is the only contract clients have for a custom resource, and they
branch on what the API server answers: `422 Invalid` with causes whose `field`, `reason` and
`message` have a fixed shape (`spec.port`, `FieldValueInvalid`,
`Invalid value: 70000: spec.port in body should be less than or equal to 65535`). The
wording here follows the apiextensions API server (go-openapi messages wrapped into
Kubernetes field errors) so a client written against a real cluster reads kubesim's errors
the same way. The server runs these in the real order: prune, default, validate.

A schema is compiled once (`compile_schema`, when its CRD is stored) into a closure per
sub-schema, so a write is one walk that prunes, defaults and validates each node where it
stands, instead of three walks each looking the schema's keywords up again at every field.
The walk has the stages as modes (`prune`, `apply_defaults` and `validate` are each one on
its own), and the fused walk answers exactly as the three in a row: causes in the order the
validation of the finished object would find them (a node's own type, then its children in
the object's final order, then what is checked of the node as a whole).

Schemas are decoded JSON, so a sub-schema is told by `isinstance(x, dict)`: a C check,
where `Mapping`'s is an ABC's Python-level `__instancecheck__`.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from gati_kubesim.errors import Cause
from gati_kubesim.jsonvalue import json_copy, json_equal, json_type

Schema = Mapping[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_TYPE_META = ("apiVersion", "kind", "metadata")


class _Admitted:
    """Stands in for a value already admitted under the same schema: the walk keeps it as
    it is and counts it present without walking it."""

    def __repr__(self) -> str:
        return "ADMITTED"


ADMITTED: Any = _Admitted()

__all__ = [
    "ADMITTED",
    "Admit",
    "Cause",
    "apply_defaults",
    "compile_schema",
    "prune",
    "validate",
]

# Where the walk is, as (parent, key or index) links: one small tuple per node instead of
# a path string that is read only for a cause or a dropped field.
_Where = tuple[Any, str | int] | None

# The walk's stages, as bits of its mode; 0 validates only (and builds nothing).
_PRUNE = 1
_FILL = 2
_ADMIT = _PRUNE | _FILL
# Marks on a field the walk comes back to after its object's own decisions, so the paths
# pruning drops are noted in document order: a field dropped, type meta cut down.
_DROPPED = 4
_CUT = 8
_GONE = 16  # a null defaulting removed
_MARKS = _DROPPED | _CUT | _GONE

# One compiled sub-schema: (value, where, causes or None, dropped or None, mode) -> the
# value to store. `causes` None walks without validating (under a node of the wrong type,
# or stages without validation); `dropped` receives the paths pruning drops.
_Node = Callable[[Any, _Where, list[Cause] | None, list[str] | None, int], Any]
_Check = Callable[[Any, _Where, list[Cause]], None]

Admit = Callable[[dict[str, Any], list[str] | None], tuple[dict[str, Any], list[Cause]]]


def compile_schema(schema: Schema) -> Admit:
    """`admit(obj, dropped) -> (stored object, causes)`: prune, default and validate `obj`
    (left untouched) in one walk; `dropped`, when given, receives every pruned field's path
    (`spec.foo`, `spec.items[0].bar`) in document order, what `fieldValidation` reports."""
    node = _compile(schema, root=True)

    def admit(obj: dict[str, Any], dropped: list[str] | None) -> tuple[dict[str, Any], list[Cause]]:
        causes: list[Cause] = []
        out: dict[str, Any] = node(obj, None, causes, dropped, _ADMIT)
        return out, causes

    return admit


def validate(obj: dict[str, Any], schema: Schema) -> list[Cause]:
    """Every way `obj` breaks `schema`, as the causes of a `422 Invalid` would list them."""
    causes: list[Cause] = []
    _compile(schema, root=True)(obj, None, causes, None, 0)
    return causes


def apply_defaults(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """A copy of `obj` with `default`s where fields are absent (or null but not nullable).

    Other nulls of non-nullable fields are dropped, as the server does while defaulting.
    Defaults apply inside objects that exist, including ones a default just created and the
    items of arrays and maps; an absent parent object is never conjured up, as on the server.
    """
    out: dict[str, Any] = _compile(schema, root=True)(obj, None, None, None, _FILL)
    return out


def prune(obj: dict[str, Any], schema: Schema, dropped: list[str] | None = None) -> dict[str, Any]:
    """A copy of `obj` without the fields the schema does not declare, unless
    `x-kubernetes-preserve-unknown-fields`.

    The root keeps `apiVersion`, `kind` and `metadata`, with `metadata` cut down to the
    fields `ObjectMeta` has, exactly as the server decodes it; embedded resources get the
    same treatment. `dropped`, when given, receives the path of every field dropped.
    """
    out: dict[str, Any] = _compile(schema, root=True)(obj, None, None, dropped, _PRUNE)
    return out


# ------------------------------------------------------------------------------ the walk


def _sub(schema: Any) -> Schema:
    """A sub-schema as written; anything but an object constrains nothing."""
    return schema if isinstance(schema, dict) else {}


def _compile(schema: Schema, root: bool = False) -> _Node:
    """The closure that walks a value under `schema` (see `_Node`); every keyword is read
    here, once, and the closure keeps only what its schema uses."""
    nullable = bool(schema.get("nullable"))
    expected = _expected_type(schema)
    fast_types = _fast_types(expected)
    scalar = _scalar_check(schema)
    enum = schema.get("enum") if "enum" in schema else None
    has_enum = "enum" in schema
    composition = _composition_check(schema)

    raw_props = schema.get("properties", {})
    props: dict[str, _Node] = {k: _compile(_sub(v)) for k, v in raw_props.items()}
    nulls_ok = {k: bool(_sub(v).get("nullable")) for k, v in raw_props.items()}
    raw_additional = schema.get("additionalProperties")
    additional = _compile(raw_additional) if isinstance(raw_additional, dict) else None
    additional_nullable = isinstance(raw_additional, dict) and bool(raw_additional.get("nullable"))
    keep_unknown = (
        bool(schema.get("x-kubernetes-preserve-unknown-fields")) or raw_additional is True
    )
    keeps_type_meta = root or bool(schema.get("x-kubernetes-embedded-resource"))
    type_meta = _TYPE_META if keeps_type_meta else ()
    root_meta = ("metadata",) if root else ()
    defaults = [
        (key, _sub(sub)["default"], nulls_ok[key])
        for key, sub in raw_props.items()
        if "default" in _sub(sub) and not (root and key == "metadata")
    ]
    min_props = schema.get("minProperties") if "minProperties" in schema else None
    max_props = schema.get("maxProperties") if "maxProperties" in schema else None
    required = list(schema.get("required", []))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    has_children = bool(props) or additional is not None

    raw_items = schema.get("items")
    items = _compile(raw_items) if isinstance(raw_items, dict) else None
    items_default = isinstance(raw_items, dict) and "default" in raw_items
    items_default_value = raw_items.get("default") if isinstance(raw_items, dict) else None
    items_nullable = isinstance(raw_items, dict) and bool(raw_items.get("nullable"))
    array = _array_check(schema)

    def walk_object(
        value: dict[str, Any],
        where: _Where,
        causes: list[Cause] | None,
        dropped: list[str] | None,
        mode: int,
    ) -> dict[str, Any]:
        out: dict[str, Any]
        # Fields walked in another mode than `mode`, or not at all; None while there are
        # none (most objects), so their walk looks nothing up beyond the schema.
        marks: dict[str, int] | None = None
        added: list[str] = []
        if mode:
            out = {}
            prunes = mode & _PRUNE
            special = type_meta if prunes else root_meta
            for key, child in value.items():
                if key in special:
                    # Only the decoding cuts type meta down; defaults never touch the root's.
                    out[key] = _cut_type_meta(key, child) if prunes else json_copy(child)
                    mark = 0 if root and key == "metadata" else mode & _FILL
                    marks = marks or {}
                    marks[key] = mark | _CUT if prunes and dropped is not None else mark
                elif key in props or additional is not None:
                    out[key] = child
                elif keep_unknown or not prunes:
                    out[key] = json_copy(child)
                else:
                    marks = marks or {}
                    marks[key] = _DROPPED
            if mode & _FILL:
                for key, default, null_ok in defaults:
                    if key not in out:
                        added.append(key)
                    elif out[key] is not None or null_ok:
                        continue
                    out[key] = default
                    marks = marks or {}
                    marks[key] = _FILL
                if has_children and None in out.values():
                    for key in [k for k, v in out.items() if v is None]:
                        if props.get(key, additional) is not None and not nulls_ok.get(
                            key, additional_nullable
                        ):
                            del out[key]
                            marks = marks or {}
                            marks[key] = _GONE
        else:
            out = value
        if causes is not None:
            if min_props is not None and len(out) < min_props:
                causes.append(
                    _invalid(
                        _path_of(where), len(out), f"should have at least {min_props} properties"
                    )
                )
                causes = None
            elif max_props is not None and len(out) > max_props:
                causes.append(
                    Cause(
                        _field(_path_of(where)),
                        "FieldValueTooMany",
                        f"Too many: {len(out)}: must have at most {max_props} items",
                    )
                )
                causes = None
        # The input's order (what pruning reports drops in), which is also the stored
        # object's (what validation reports causes in), then the fields defaults added.
        for key in (*value, *added) if added else value:
            child_mode = mode
            if marks is not None and key in marks:
                child_mode = marks[key]
                if child_mode & _MARKS:
                    if child_mode & _GONE:
                        continue
                    if dropped is not None:
                        if child_mode & _DROPPED:
                            dropped.append(_path_of((where, key)))
                            continue
                        dropped += _type_meta_drops(key, value[key], (where, key))
                    elif child_mode & _DROPPED:
                        continue
                    child_mode &= ~_CUT
            node = props.get(key, additional)
            if node is not None and (child_mode or causes is not None):
                walked = node(out[key], (where, key), causes, dropped, child_mode)
                if child_mode:
                    out[key] = walked
        if causes is not None:
            if required:
                for key in required:
                    if key not in out:
                        path = _path_of(where)
                        causes.append(
                            Cause(_field(f"{path}.{key}"), "FieldValueRequired", "Required value")
                        )
            if embedded:
                for key in ("apiVersion", "kind"):
                    if not out.get(key):
                        path = _path_of(where)
                        causes.append(
                            Cause(_field(f"{path}.{key}"), "FieldValueRequired", "Required value")
                        )
        return out

    def walk_array(
        value: list[Any],
        where: _Where,
        causes: list[Cause] | None,
        dropped: list[str] | None,
        mode: int,
    ) -> list[Any]:
        out: list[Any]
        if items is None:
            out = json_copy(value) if mode else value
        elif mode:
            out = []
            fills = mode & _FILL
            for index, item in enumerate(value):
                item_mode = mode
                if item is None and fills and items_default and not items_nullable:
                    item, item_mode = items_default_value, _FILL
                out.append(items(item, (where, index), causes, dropped, item_mode))
        else:
            out = value
            if causes is not None:
                for index, item in enumerate(value):
                    items(item, (where, index), causes, None, 0)
        if causes is not None and array is not None:
            array(out, where, causes)
        return out

    def node(
        value: Any,
        where: _Where,
        causes: list[Cause] | None,
        dropped: list[str] | None,
        mode: int,
    ) -> Any:
        if value is None:
            if causes is not None and expected and not nullable:
                causes.append(_type_invalid(_path_of(where), expected, "null"))
            return None
        if value is ADMITTED or (causes is None and not mode):
            return value
        kind = type(value)
        if causes is not None and expected and kind not in fast_types:
            actual = json_type(value)
            if not _type_matches(actual, value, expected):
                causes.append(_type_invalid(_path_of(where), expected, actual))
                if not mode:
                    return value
                causes = None
        if kind is dict:
            value = walk_object(value, where, causes, dropped, mode)
        elif kind is list:
            value = walk_array(value, where, causes, dropped, mode)
        elif causes is not None and scalar is not None:
            scalar(value, where, causes)
        if causes is not None:
            if has_enum and not _in_enum(value, enum):
                causes.append(_not_supported(where, value, enum))
            if composition is not None:
                composition(value, where, causes)
        return value

    return node


def _fast_types(expected: str) -> frozenset[type]:
    """Python types that certainly are of the expected JSON type, told without `json_type`."""
    by_name: dict[str, tuple[type, ...]] = {
        "string": (str,),
        "integer": (int,),
        "number": (int, float),
        "boolean": (bool,),
        "array": (list,),
        "object": (dict,),
    }
    return frozenset(t for name in expected.split(",") for t in by_name.get(name, ()))


def _scalar_check(schema: Schema) -> _Check | None:
    """The string and number keywords of a schema as one check, or None if it has none."""
    max_length = schema.get("maxLength") if "maxLength" in schema else None
    min_length = schema.get("minLength") if "minLength" in schema else None
    pattern = schema.get("pattern") if "pattern" in schema else None
    regex = _compiled(pattern) if isinstance(pattern, str) else None
    fmt = schema.get("format")
    parse = _FORMATS.get(fmt) if isinstance(fmt, str) else None
    has_max = "maximum" in schema
    maximum: Any = schema.get("maximum")
    exclusive_max = bool(schema.get("exclusiveMaximum"))
    has_min = "minimum" in schema
    minimum: Any = schema.get("minimum")
    exclusive_min = bool(schema.get("exclusiveMinimum"))
    factor = schema.get("multipleOf")
    strings = max_length is not None or min_length is not None or pattern is not None
    numbers = has_max or has_min or bool(factor)
    if not (strings or parse is not None or numbers):
        return None

    def check(value: Any, where: _Where, causes: list[Cause]) -> None:
        kind = type(value)
        if kind is str:
            if max_length is not None and len(value) > max_length:
                unit = "byte" if max_length == 1 else "bytes"
                causes.append(
                    Cause(
                        _field(_path_of(where)),
                        "FieldValueTooLong",
                        f"Too long: may not be more than {max_length} {unit}",
                    )
                )
            if min_length is not None and len(value) < min_length:
                causes.append(
                    _invalid(_path_of(where), value, f"should be at least {min_length} chars long")
                )
            if pattern is not None and (regex is None or regex.search(value) is None):
                causes.append(_invalid(_path_of(where), value, f"should match '{pattern}'"))
            if parse is not None and not _format_ok(parse, value):
                path = _field(_path_of(where))
                causes.append(
                    Cause(
                        path,
                        "FieldValueTypeInvalid",
                        f"Invalid value: {_show(value)}: {path} in body must be of type "
                        f"{fmt}: {json.dumps(value)}",
                    )
                )
        elif numbers and json_type(value) in ("integer", "number"):
            if has_max:
                if exclusive_max and value >= maximum:
                    causes.append(
                        _invalid(_path_of(where), value, f"should be less than {_num(maximum)}")
                    )
                elif value > maximum:
                    detail = f"should be less than or equal to {_num(maximum)}"
                    causes.append(_invalid(_path_of(where), value, detail))
            if has_min:
                if exclusive_min and value <= minimum:
                    causes.append(
                        _invalid(_path_of(where), value, f"should be greater than {_num(minimum)}")
                    )
                elif value < minimum:
                    detail = f"should be greater than or equal to {_num(minimum)}"
                    causes.append(_invalid(_path_of(where), value, detail))
            if factor and not math.isclose(value / factor, round(value / factor), abs_tol=1e-9):
                causes.append(
                    _invalid(_path_of(where), value, f"should be a multiple of {_num(factor)}")
                )

    return check


def _array_check(schema: Schema) -> _Check | None:
    """An array's own keywords (sizes, uniqueness, list-map keys) as one check, or None."""
    min_items = schema.get("minItems") if "minItems" in schema else None
    max_items = schema.get("maxItems") if "maxItems" in schema else None
    list_type = schema.get("x-kubernetes-list-type")
    unique = bool(schema.get("uniqueItems")) or list_type == "set"
    map_keys = schema.get("x-kubernetes-list-map-keys", []) if list_type == "map" else None
    if min_items is None and max_items is None and not unique and map_keys is None:
        return None

    def check(value: Any, where: _Where, causes: list[Cause]) -> None:
        path = _path_of(where)
        if min_items is not None and len(value) < min_items:
            causes.append(_invalid(path, len(value), f"should have at least {min_items} items"))
        if max_items is not None and len(value) > max_items:
            causes.append(
                Cause(
                    _field(path),
                    "FieldValueTooMany",
                    f"Too many: {len(value)}: must have at most {max_items} items",
                )
            )
        if unique and _has_duplicates(value):
            if list_type == "set":
                duplicate = next(v for i, v in enumerate(value) if _json_in(v, value[:i]))
                causes.append(
                    Cause(
                        f"{_field(path)}[{value.index(duplicate)}]",
                        "FieldValueDuplicate",
                        f"Duplicate value: {_show(duplicate)}",
                    )
                )
            else:
                causes.append(_invalid(path, "", "shouldn't contain duplicates"))
        if map_keys is not None:
            _check_list_map(value, map_keys, path, causes)

    return check


def _check_list_map(value: list[Any], keys: list[str], path: str, causes: list[Cause]) -> None:
    seen: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            continue
        key = {k: item.get(k) for k in keys}
        if key in seen:
            causes.append(
                Cause(
                    f"{_field(path)}[{index}]",
                    "FieldValueDuplicate",
                    f"Duplicate value: {json.dumps(key, separators=(',', ':'))}",
                )
            )
        seen.append(key)


def _composition_check(schema: Schema) -> _Check | None:
    """`allOf`/`anyOf`/`oneOf`/`not`: in structural schemas these only add value checks."""
    if not ("allOf" in schema or "anyOf" in schema or "oneOf" in schema or "not" in schema):
        return None
    all_of = [_compile(_sub(sub)) for sub in schema.get("allOf", [])]
    any_of = [_compile(_sub(sub)) for sub in schema["anyOf"]] if "anyOf" in schema else None
    one_of = [_compile(_sub(sub)) for sub in schema["oneOf"]] if "oneOf" in schema else None
    not_ = _compile(_sub(schema["not"])) if "not" in schema else None

    def check(value: Any, where: _Where, causes: list[Cause]) -> None:
        for sub in all_of:
            sub(value, where, causes, None, 0)
        if any_of is None and one_of is None and not_ is None:
            return
        path = _path_of(where)
        quoted = json.dumps(_field(path))
        if any_of is not None:
            results = [_causes_of(sub, value, where) for sub in any_of]
            if all(results):
                causes.append(
                    _composite(path, f"{quoted} must validate at least one schema (anyOf)")
                )
                causes.extend(_fewest(results))
        if one_of is not None:
            results = [_causes_of(sub, value, where) for sub in one_of]
            valid = sum(1 for r in results if not r)
            if valid != 1:
                found = "none valid" if valid == 0 else f"{valid} valid alternatives"
                causes.append(
                    _composite(
                        path,
                        f"{quoted} must validate one and only one schema (oneOf). Found {found}",
                    )
                )
                if valid == 0:
                    causes.extend(_fewest(results))
        if not_ is not None and not _causes_of(not_, value, where):
            causes.append(_composite(path, f"{quoted} must not validate the schema (not)"))

    return check


def _causes_of(node: _Node, value: Any, where: _Where) -> list[Cause]:
    found: list[Cause] = []
    node(value, where, found, None, 0)
    return found


def _fewest(results: list[list[Cause]]) -> list[Cause]:
    """The alternative that came closest, whose failures best explain the rejection (none
    for a schema that offers no alternatives, which no value can then satisfy)."""
    return min(results, key=len, default=[])


def _in_enum(value: Any, enum: Any) -> bool:
    # A string equals only a string, so Python's `in` decides it exactly (most enums are
    # of strings); other values need JSON's equality, where true is not 1.
    if type(value) is str:
        return value in enum
    return any(json_equal(value, e) for e in enum)


def _not_supported(where: _Where, value: Any, enum: Any) -> Cause:
    supported = ", ".join(
        json.dumps(e) if isinstance(e, str) else json.dumps(json.dumps(e)) for e in enum
    )
    return Cause(
        _field(_path_of(where)),
        "FieldValueNotSupported",
        f"Unsupported value: {_show(value)}: supported values: {supported}",
    )


def _expected_type(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "integer,string"
    declared = schema.get("type")
    return declared if isinstance(declared, str) else ""


def _type_matches(actual: str, value: Any, expected: str) -> bool:
    if actual == expected:
        return True
    allowed = expected.split(",")
    if actual in allowed:
        return True
    if actual == "integer" and "number" in allowed:
        return True
    return actual == "number" and "integer" in allowed and float(value).is_integer()


def _parse_date_time(value: str) -> object:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _parse_byte(value: str) -> object:
    return base64.b64decode(value, validate=True)


# The string formats the API server checks, by the parse that must accept a value of it;
# other formats pass, as there.
_FORMATS: dict[str, Callable[[str], object]] = {
    "date-time": _parse_date_time,
    "date": datetime.date.fromisoformat,
    "uuid": uuid.UUID,
    "byte": _parse_byte,
}


def _format_ok(parse: Callable[[str], object], value: str) -> bool:
    try:
        parse(value)
    except (ValueError, binascii.Error):
        return False
    return True


def _compiled(pattern: str) -> re.Pattern[str] | None:
    """An ECMA-262 pattern as CRDs write it (`\\d`-style classes mean ASCII there).

    A pattern Python cannot compile fails every value rather than the request, so the
    client still gets a 422 naming the field instead of a server error.
    """
    try:
        return re.compile("(?a)" + pattern)
    except re.error:
        return None


def _has_duplicates(values: list[Any]) -> bool:
    return any(_json_in(v, values[:i]) for i, v in enumerate(values))


def _json_in(value: Any, values: list[Any]) -> bool:
    return any(json_equal(value, v) for v in values)


def _field(path: str) -> str:
    return path.lstrip(".")


def _num(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _show(value: Any) -> str:
    """A bad value as Kubernetes field errors print it: strings quoted, numbers bare."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value)
    return json.dumps(value, separators=(",", ":"))


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(
        _field(path),
        "FieldValueInvalid",
        f"Invalid value: {_show(value)}: {_field(path)} in body {detail}",
    )


def _type_invalid(path: str, expected: str, actual: str) -> Cause:
    return Cause(
        _field(path),
        "FieldValueTypeInvalid",
        f'Invalid value: "{actual}": {_field(path)} in body must be of type {expected}: "{actual}"',
    )


def _composite(path: str, message: str) -> Cause:
    return Cause(_field(path), "FieldValueInvalid", f'Invalid value: "": {message}')


def _cut_type_meta(key: str, value: Any) -> Any:
    if key == "metadata" and isinstance(value, dict):
        # A new dict, sharing its values: nothing downstream writes into metadata's members
        # (managedFields alone would double the copy), and the store copies what it changes.
        return {k: v for k, v in value.items() if k in OBJECT_META_FIELDS}
    return json_copy(value)


def _type_meta_drops(key: str, value: Any, where: _Where) -> list[str]:
    if key == "metadata" and isinstance(value, dict):
        return [_path_of((where, k)) for k in value if k not in OBJECT_META_FIELDS]
    return []


def _path_of(where: _Where) -> str:
    """`spec.items[0].bar` from the links of `_prune`."""
    steps: list[str | int] = []
    while where is not None:
        where, step = where
        steps.append(step)
    path = ""
    for step in reversed(steps):
        if isinstance(step, int):
            path += f"[{step}]"
        else:
            path = f"{path}.{step}" if path else step
    return path
