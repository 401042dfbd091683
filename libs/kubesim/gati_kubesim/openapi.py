"""Structural-schema handling for custom resources: validation, defaulting and pruning.

A CRD's `openAPIV3Schema` is the only contract clients have for a custom resource, and they
branch on what the API server answers: `422 Invalid` with causes whose `field`, `reason` and
`message` have a fixed shape (`spec.port`, `FieldValueInvalid`,
`Invalid value: 70000: spec.port in body should be less than or equal to 65535`). The
wording here follows the apiextensions API server (go-openapi messages wrapped into
Kubernetes field errors) so a client written against a real cluster reads kubesim's errors
the same way. The server runs these in the real order: prune, default, validate.

Schemas are decoded JSON, so a sub-schema is told by `isinstance(x, dict)`: a C check,
where `Mapping`'s is an ABC's Python-level `__instancecheck__`, met on every field of
every custom-resource write.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
import math
import re
import uuid
from collections.abc import Mapping
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
    """Stands in for a value already admitted under the same schema: `prune` and
    `apply_defaults` keep it as it is and `validate` counts it present without walking it."""

    def __repr__(self) -> str:
        return "ADMITTED"


ADMITTED: Any = _Admitted()

__all__ = ["ADMITTED", "Cause", "apply_defaults", "fill_defaults", "prune", "validate"]


# ------------------------------------------------------------------------------ validate


def validate(obj: dict[str, Any], schema: Schema) -> list[Cause]:
    """Every way `obj` breaks `schema`, as the causes of a `422 Invalid` would list them."""
    causes: list[Cause] = []
    _validate(obj, schema, "", causes)
    return causes


def _validate(value: Any, schema: Schema, path: str, causes: list[Cause]) -> None:
    if value is ADMITTED:
        return
    if value is None:
        if schema.get("nullable"):
            return
        expected = _expected_type(schema)
        if expected:
            causes.append(_type_invalid(path, expected, "null"))
        return
    actual = json_type(value)
    expected = _expected_type(schema)
    if expected and not _type_matches(actual, value, expected):
        causes.append(_type_invalid(path, expected, actual))
        return
    if isinstance(value, str):
        _validate_string(value, schema, path, causes)
    elif actual in ("integer", "number"):
        _validate_number(value, schema, path, causes)
    elif isinstance(value, list):
        _validate_array(value, schema, path, causes)
    elif isinstance(value, dict):
        _validate_object(value, schema, path, causes)
    if "enum" in schema and not _in_enum(value, schema["enum"]):
        supported = ", ".join(
            json.dumps(e) if isinstance(e, str) else json.dumps(json.dumps(e))
            for e in schema["enum"]
        )
        causes.append(
            Cause(
                _field(path),
                "FieldValueNotSupported",
                f"Unsupported value: {_show(value)}: supported values: {supported}",
            )
        )
    if "allOf" in schema or "anyOf" in schema or "oneOf" in schema or "not" in schema:
        _validate_composition(value, schema, path, causes)


def _in_enum(value: Any, enum: list[Any]) -> bool:
    # A string equals only a string, so Python's `in` decides it exactly (most enums are
    # of strings); other values need JSON's equality, where true is not 1.
    if type(value) is str:
        return value in enum
    return any(json_equal(value, e) for e in enum)


def _validate_string(value: str, schema: Schema, path: str, causes: list[Cause]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        limit = schema["maxLength"]
        unit = "byte" if limit == 1 else "bytes"
        causes.append(
            Cause(
                _field(path),
                "FieldValueTooLong",
                f"Too long: may not be more than {limit} {unit}",
            )
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        causes.append(_invalid(path, value, f"should be at least {schema['minLength']} chars long"))
    if "pattern" in schema and not _matches(schema["pattern"], value):
        causes.append(_invalid(path, value, f"should match '{schema['pattern']}'"))
    fmt = schema.get("format")
    if isinstance(fmt, str) and not _format_ok(fmt, value):
        causes.append(
            Cause(
                _field(path),
                "FieldValueTypeInvalid",
                f"Invalid value: {_show(value)}: {_field(path)} in body must be of type "
                f"{fmt}: {json.dumps(value)}",
            )
        )


def _validate_number(value: float, schema: Schema, path: str, causes: list[Cause]) -> None:
    if "maximum" in schema:
        limit = schema["maximum"]
        if schema.get("exclusiveMaximum") and value >= limit:
            causes.append(_invalid(path, value, f"should be less than {_num(limit)}"))
        elif value > limit:
            causes.append(_invalid(path, value, f"should be less than or equal to {_num(limit)}"))
    if "minimum" in schema:
        limit = schema["minimum"]
        if schema.get("exclusiveMinimum") and value <= limit:
            causes.append(_invalid(path, value, f"should be greater than {_num(limit)}"))
        elif value < limit:
            causes.append(
                _invalid(path, value, f"should be greater than or equal to {_num(limit)}")
            )
    factor = schema.get("multipleOf")
    if factor and not math.isclose(value / factor, round(value / factor), abs_tol=1e-9):
        causes.append(_invalid(path, value, f"should be a multiple of {_num(factor)}"))


def _validate_array(value: list[Any], schema: Schema, path: str, causes: list[Cause]) -> None:
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}[{index}]", causes)
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(
            _invalid(path, len(value), f"should have at least {schema['minItems']} items")
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(
            Cause(
                _field(path),
                "FieldValueTooMany",
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
            )
        )
    unique = schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set"
    if unique and _has_duplicates(value):
        if schema.get("x-kubernetes-list-type") == "set":
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
    if schema.get("x-kubernetes-list-type") == "map":
        _validate_list_map(value, schema, path, causes)


def _validate_list_map(value: list[Any], schema: Schema, path: str, causes: list[Cause]) -> None:
    keys = schema.get("x-kubernetes-list-map-keys", [])
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


def _validate_object(value: dict[str, Any], schema: Schema, path: str, causes: list[Cause]) -> None:
    count = len(value)
    if "minProperties" in schema and count < schema["minProperties"]:
        causes.append(
            _invalid(path, count, f"should have at least {schema['minProperties']} properties")
        )
        return
    if "maxProperties" in schema and count > schema["maxProperties"]:
        causes.append(
            Cause(
                _field(path),
                "FieldValueTooMany",
                f"Too many: {count}: must have at most {schema['maxProperties']} items",
            )
        )
        return
    properties: Mapping[str, Schema] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else key
        if key in properties:
            _validate(child, properties[key], child_path, causes)
        elif isinstance(additional, dict):
            _validate(child, additional, child_path, causes)
    for key in schema.get("required", []):
        if key not in value:
            causes.append(Cause(_field(f"{path}.{key}"), "FieldValueRequired", "Required value"))
    if schema.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            if not value.get(key):
                causes.append(
                    Cause(_field(f"{path}.{key}"), "FieldValueRequired", "Required value")
                )


def _validate_composition(value: Any, schema: Schema, path: str, causes: list[Cause]) -> None:
    """`allOf`/`anyOf`/`oneOf`/`not`: in structural schemas these only add value checks."""
    for sub in schema.get("allOf", []):
        _validate(value, sub, path, causes)
    if "anyOf" not in schema and "oneOf" not in schema and "not" not in schema:
        return
    quoted = json.dumps(_field(path))
    if "anyOf" in schema:
        results = [_sub_causes(value, sub, path) for sub in schema["anyOf"]]
        if all(results):
            causes.append(_composite(path, f"{quoted} must validate at least one schema (anyOf)"))
            causes.extend(_fewest(results))
    if "oneOf" in schema:
        results = [_sub_causes(value, sub, path) for sub in schema["oneOf"]]
        valid = sum(1 for r in results if not r)
        if valid != 1:
            found = "none valid" if valid == 0 else f"{valid} valid alternatives"
            causes.append(
                _composite(
                    path, f"{quoted} must validate one and only one schema (oneOf). Found {found}"
                )
            )
            if valid == 0:
                causes.extend(_fewest(results))
    if "not" in schema and not _sub_causes(value, schema["not"], path):
        causes.append(_composite(path, f"{quoted} must not validate the schema (not)"))


def _fewest(results: list[list[Cause]]) -> list[Cause]:
    """The alternative that came closest, whose failures best explain the rejection."""
    return sorted(results, key=len)[0]


def _sub_causes(value: Any, schema: Schema, path: str) -> list[Cause]:
    found: list[Cause] = []
    _validate(value, schema, path, found)
    return found


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


def _format_ok(fmt: str, value: str) -> bool:
    """String formats the API server checks; unknown formats pass, as there."""
    try:
        if fmt == "date-time":
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "date":
            datetime.date.fromisoformat(value)
        elif fmt == "uuid":
            uuid.UUID(value)
        elif fmt == "byte":
            base64.b64decode(value, validate=True)
        else:
            return True
    except (ValueError, binascii.Error):
        return False
    return True


def _matches(pattern: str, value: str) -> bool:
    """ECMA-262 patterns as CRDs write them (`\\d`-style classes mean ASCII there).

    A pattern Python cannot compile fails the value rather than the request, so the client
    still gets a 422 naming the field instead of a server error.
    """
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(value) is not None


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """A CRD's patterns, compiled once rather than looked up in `re`'s cache per value."""
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


# ------------------------------------------------------------------------------ defaults


def apply_defaults(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """Fill `default`s where fields are absent (or null but not nullable), recursively.

    Other nulls of non-nullable fields are dropped, as the server does while defaulting.

    Defaults apply inside objects that exist, including ones a default just created and the
    items of arrays and maps; an absent parent object is never conjured up, as on the server.
    """
    return fill_defaults(json_copy(obj), schema)


def fill_defaults(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """`apply_defaults` in place, for an object that is already a private copy (what `prune`
    returns), so admission copies each write once rather than twice."""
    _default(obj, schema, root=True)
    return obj


def _default(value: Any, schema: Schema, root: bool = False) -> None:
    if isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        for key, child in properties.items():
            if root and key == "metadata":
                continue
            if "default" in child and _missing(value, key, child):
                value[key] = json_copy(child["default"])
        additional = schema.get("additionalProperties")
        _drop_nulls(value, properties, additional)
        for key, child_value in value.items():
            if root and key == "metadata":
                continue
            if key in properties:
                _default(child_value, properties[key])
            elif isinstance(additional, dict):
                _default(child_value, additional)
    elif isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return
        for index, item in enumerate(value):
            if item is None and "default" in items and not items.get("nullable"):
                value[index] = json_copy(items["default"])
            _default(value[index], items)


def _drop_nulls(value: dict[str, Any], properties: Mapping[str, Schema], additional: Any) -> None:
    """Nulls of non-nullable fields without a default go, as the server prunes them."""
    for key in [k for k, v in value.items() if v is None]:
        child = properties.get(key, additional if isinstance(additional, dict) else None)
        if child is not None and not child.get("nullable"):
            del value[key]


def _missing(value: dict[str, Any], key: str, schema: Schema) -> bool:
    return key not in value or (value[key] is None and not schema.get("nullable"))


# ------------------------------------------------------------------------------- pruning


def prune(obj: dict[str, Any], schema: Schema, dropped: list[str] | None = None) -> dict[str, Any]:
    """Drop fields the schema does not declare, unless `x-kubernetes-preserve-unknown-fields`.

    The root keeps `apiVersion`, `kind` and `metadata`, with `metadata` cut down to the
    fields `ObjectMeta` has, exactly as the server decodes it; embedded resources get the
    same treatment. `dropped`, when given, receives the path of every field dropped
    (`spec.foo`, `spec.items[0].bar`) in document order: what `fieldValidation` reports,
    noted as the walk drops them instead of found by a second walk comparing the two.
    """
    pruned = _prune(obj, schema, True, None, dropped)
    assert isinstance(pruned, dict)
    return pruned


# Where the walk is, as (parent, key or index) links built only when drops are collected:
# one small tuple per node instead of a path string that is almost never read.
_Where = tuple[Any, str | int] | None


def _prune(value: Any, schema: Schema, root: bool, where: _Where, dropped: list[str] | None) -> Any:
    if isinstance(value, dict):
        properties: Mapping[str, Schema] = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        keeps_type_meta = root or bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        for key, child in value.items():
            at = None if dropped is None else (where, key)
            if keeps_type_meta and key in _TYPE_META:
                out[key] = _prune_type_meta(key, child, at, dropped)
            elif key in properties:
                out[key] = _prune(child, properties[key], False, at, dropped)
            elif isinstance(additional, dict):
                out[key] = _prune(child, additional, False, at, dropped)
            elif preserve or additional is True:
                out[key] = json_copy(child)
            elif dropped is not None:
                dropped.append(_path_of(at))
        return out
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            if dropped is None:
                return [_prune(item, items, False, None, None) for item in value]
            return [
                _prune(item, items, False, (where, index), dropped)
                for index, item in enumerate(value)
            ]
        return json_copy(value)
    return value


def _prune_type_meta(key: str, value: Any, where: _Where, dropped: list[str] | None) -> Any:
    if key == "metadata" and isinstance(value, dict):
        # A new dict, sharing its values: nothing downstream writes into metadata's members
        # (managedFields alone would double the copy), and the store copies what it changes.
        if dropped is not None:
            dropped += [_path_of((where, k)) for k in value if k not in OBJECT_META_FIELDS]
        return {k: v for k, v in value.items() if k in OBJECT_META_FIELDS}
    return json_copy(value)


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
