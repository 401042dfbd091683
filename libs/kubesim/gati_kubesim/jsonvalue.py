"""What kind of JSON value a decoded Python value is, and when two are equal.

Python's `True == 1` and `1 == 1.0` do not match how the API server compares decoded JSON
(a boolean never equals a number; an integer equals the same float). Patches, schemas
and field ownership all compare values, so they share these rules.
"""

from __future__ import annotations

from typing import Any

# Decoded JSON holds exactly these types; one lookup answers what the isinstance chain
# below would, and validation asks it of every value of every write.
_EXACT_TYPES: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}
_GO_KINDS = {**_EXACT_TYPES, int: "number"}


def json_type(value: Any) -> str:
    """The JSON Schema type name: null, boolean, integer, number, string, array, object."""
    exact = _EXACT_TYPES.get(type(value))
    if exact is not None:
        return exact
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def go_kind(value: Any) -> str:
    """The kind Go's decoder gives a value, where every number is a float64."""
    exact = _GO_KINDS.get(type(value))
    if exact is not None:
        return exact
    kind = json_type(value)
    return "number" if kind == "integer" else kind


def json_equal(a: Any, b: Any) -> bool:
    """Deep equality of decoded JSON, with booleans never equal to numbers."""
    if type(a) is str:
        return type(b) is str and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return go_kind(a) == go_kind(b) and bool(a == b)


def json_copy(value: Any) -> Any:
    """A deep copy of decoded JSON, several times faster than `copy.deepcopy` on it."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value
