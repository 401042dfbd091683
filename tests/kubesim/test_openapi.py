"""CRD structural schemas: causes worded like the real API server's, defaults, pruning."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gati_kubesim.openapi import Cause, apply_defaults, compile_schema, prune, validate


def obj(spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1",
        "kind": "GatiHandler",
        "metadata": {"name": "h"},
        "spec": spec,
    }


def spec_schema(**spec: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {"type": "object", **spec}}}


PORT = {"type": "integer", "format": "int32", "minimum": 1, "maximum": 65535}

VALIDATION_CASES = [
    pytest.param(
        spec_schema(properties={"port": PORT}),
        {"port": 70000},
        [
            Cause(
                "spec.port",
                "FieldValueInvalid",
                "Invalid value: 70000: spec.port in body should be less than or equal to 65535",
            )
        ],
        id="maximum",
    ),
    pytest.param(
        spec_schema(properties={"port": PORT}),
        {"port": 0},
        [
            Cause(
                "spec.port",
                "FieldValueInvalid",
                "Invalid value: 0: spec.port in body should be greater than or equal to 1",
            )
        ],
        id="minimum",
    ),
    pytest.param(
        spec_schema(properties={"n": {"type": "number", "maximum": 1, "exclusiveMaximum": True}}),
        {"n": 1},
        [
            Cause(
                "spec.n",
                "FieldValueInvalid",
                "Invalid value: 1: spec.n in body should be less than 1",
            )
        ],
        id="exclusive-maximum",
    ),
    pytest.param(
        spec_schema(required=["image"], properties={"image": {"type": "string"}}),
        {},
        [Cause("spec.image", "FieldValueRequired", "Required value")],
        id="required",
    ),
    pytest.param(
        spec_schema(properties={"replicas": {"type": "integer"}}),
        {"replicas": "three"},
        [
            Cause(
                "spec.replicas",
                "FieldValueTypeInvalid",
                'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
            )
        ],
        id="type",
    ),
    pytest.param(
        spec_schema(properties={"replicas": {"type": "integer"}}),
        {"replicas": 2.0},
        [],
        id="integral-float-is-an-integer",
    ),
    pytest.param(
        spec_schema(properties={"mode": {"type": "string", "enum": ["fast", "safe"]}}),
        {"mode": "slow"},
        [
            Cause(
                "spec.mode",
                "FieldValueNotSupported",
                'Unsupported value: "slow": supported values: "fast", "safe"',
            )
        ],
        id="enum",
    ),
    pytest.param(
        spec_schema(properties={"name": {"type": "string", "maxLength": 3}}),
        {"name": "abcd"},
        [Cause("spec.name", "FieldValueTooLong", "Too long: may not be more than 3 bytes")],
        id="max-length",
    ),
    pytest.param(
        spec_schema(properties={"name": {"type": "string", "minLength": 2}}),
        {"name": "a"},
        [
            Cause(
                "spec.name",
                "FieldValueInvalid",
                'Invalid value: "a": spec.name in body should be at least 2 chars long',
            )
        ],
        id="min-length",
    ),
    pytest.param(
        spec_schema(properties={"name": {"type": "string", "pattern": "^[a-z]+$"}}),
        {"name": "A1"},
        [
            Cause(
                "spec.name",
                "FieldValueInvalid",
                "Invalid value: \"A1\": spec.name in body should match '^[a-z]+$'",
            )
        ],
        id="pattern",
    ),
    pytest.param(
        spec_schema(
            properties={
                "ports": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"port": PORT}, "required": ["port"]},
                }
            }
        ),
        {"ports": [{"port": 80}, {}]},
        [Cause("spec.ports[1].port", "FieldValueRequired", "Required value")],
        id="array-items-paths",
    ),
    pytest.param(
        spec_schema(
            properties={"tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}}}
        ),
        {"tags": ["a", "b"]},
        [Cause("spec.tags", "FieldValueTooMany", "Too many: 2: must have at most 1 items")],
        id="max-items",
    ),
    pytest.param(
        spec_schema(
            properties={"tags": {"type": "array", "minItems": 1, "items": {"type": "string"}}}
        ),
        {"tags": []},
        [
            Cause(
                "spec.tags",
                "FieldValueInvalid",
                "Invalid value: 0: spec.tags in body should have at least 1 items",
            )
        ],
        id="min-items",
    ),
    pytest.param(
        spec_schema(properties={"note": {"type": "string"}}),
        {"note": None},
        [
            Cause(
                "spec.note",
                "FieldValueTypeInvalid",
                'Invalid value: "null": spec.note in body must be of type string: "null"',
            )
        ],
        id="null-not-nullable",
    ),
    pytest.param(
        spec_schema(properties={"note": {"type": "string", "nullable": True}}),
        {"note": None},
        [],
        id="nullable",
    ),
    pytest.param(
        spec_schema(properties={"port": {"x-kubernetes-int-or-string": True}}),
        {"port": True},
        [
            Cause(
                "spec.port",
                "FieldValueTypeInvalid",
                'Invalid value: "boolean": spec.port in body must be of type '
                'integer,string: "boolean"',
            )
        ],
        id="int-or-string-rejects-bool",
    ),
    pytest.param(
        spec_schema(
            properties={
                "a": {"x-kubernetes-int-or-string": True},
                "b": {"x-kubernetes-int-or-string": True},
            }
        ),
        {"a": 1, "b": "25%"},
        [],
        id="int-or-string-accepts-both",
    ),
    pytest.param(
        spec_schema(additionalProperties={"type": "integer"}),
        {"x": 1, "y": "no"},
        [
            Cause(
                "spec.y",
                "FieldValueTypeInvalid",
                'Invalid value: "string": spec.y in body must be of type integer: "string"',
            )
        ],
        id="additional-properties",
    ),
    pytest.param(
        spec_schema(properties={"when": {"type": "string", "format": "date-time"}}),
        {"when": "yesterday"},
        [
            Cause(
                "spec.when",
                "FieldValueTypeInvalid",
                'Invalid value: "yesterday": spec.when in body must be of type '
                'date-time: "yesterday"',
            )
        ],
        id="format-date-time",
    ),
    pytest.param(
        spec_schema(
            properties={
                "keys": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                }
            }
        ),
        {"keys": ["a", "a"]},
        [Cause("spec.keys[0]", "FieldValueDuplicate", 'Duplicate value: "a"')],
        id="set-duplicates",
    ),
    pytest.param(
        spec_schema(
            properties={"a": {"type": "string"}, "b": {"type": "string"}},
            oneOf=[{"required": ["a"]}, {"required": ["b"]}],
        ),
        {"a": "x", "b": "y"},
        [
            Cause(
                "spec",
                "FieldValueInvalid",
                'Invalid value: "": "spec" must validate one and only one schema (oneOf). '
                "Found 2 valid alternatives",
            )
        ],
        id="one-of",
    ),
    pytest.param(
        spec_schema(
            properties={"a": {"type": "string"}}, anyOf=[{"required": ["a"]}, {"required": ["b"]}]
        ),
        {},
        [
            Cause(
                "spec",
                "FieldValueInvalid",
                'Invalid value: "": "spec" must validate at least one schema (anyOf)',
            ),
            Cause("spec.a", "FieldValueRequired", "Required value"),
        ],
        id="any-of",
    ),
    pytest.param(
        spec_schema(properties={"a": {"type": "string", "not": {"enum": ["x"]}}}),
        {"a": "x"},
        [
            Cause(
                "spec.a",
                "FieldValueInvalid",
                'Invalid value: "": "spec.a" must not validate the schema (not)',
            )
        ],
        id="not",
    ),
    pytest.param(
        spec_schema(
            properties={
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            }
        ),
        {"template": {"metadata": {}}},
        [
            Cause("spec.template.apiVersion", "FieldValueRequired", "Required value"),
            Cause("spec.template.kind", "FieldValueRequired", "Required value"),
        ],
        id="embedded-resource-needs-type-meta",
    ),
]


@pytest.mark.parametrize(("schema", "spec", "expected"), VALIDATION_CASES)
def test_validate_reports_causes_like_the_api_server(
    schema: dict[str, Any], spec: Any, expected: list[Cause]
) -> None:
    assert validate(obj(spec), schema) == expected


def test_validate_collects_every_cause() -> None:
    schema = spec_schema(required=["image"], properties={"port": PORT, "image": {"type": "string"}})
    causes = validate(obj({"port": "x"}), schema)
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.port", "FieldValueTypeInvalid"),
        ("spec.image", "FieldValueRequired"),
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [("1", True), (1, True), (1.0, True), (True, False), ("true", False), (None, True)],
)
def test_enum_compares_json_values_not_python_ones(value: Any, ok: bool) -> None:
    schema = spec_schema(properties={"v": {"enum": ["1", 1, None], "nullable": True}})
    reasons = [c.reason for c in validate(obj({"v": value}), schema)]
    assert reasons == ([] if ok else ["FieldValueNotSupported"])


def test_a_pattern_is_checked_the_same_on_every_use() -> None:
    schema = spec_schema(properties={"name": {"type": "string", "pattern": "^\\d+$"}})
    for _ in range(2):
        assert validate(obj({"name": "42"}), schema) == []
        # ECMA-262's \d is ASCII only, whatever Python's default would say.
        assert [c.reason for c in validate(obj({"name": "\u0664"}), schema)] == [
            "FieldValueInvalid"
        ]


def test_bad_pattern_in_schema_fails_the_value_not_the_server() -> None:
    schema = spec_schema(properties={"name": {"type": "string", "pattern": "(unclosed"}})
    assert [c.reason for c in validate(obj({"name": "x"}), schema)] == ["FieldValueInvalid"]


# ------------------------------------------------------------------------------ defaults

DEFAULTS_SCHEMA = spec_schema(
    properties={
        "replicas": {"type": "integer", "default": 1},
        "note": {"type": "string", "default": "none"},
        "gone": {"type": "string"},
        "maybe": {"type": "string", "nullable": True, "default": "d"},
        "scaling": {
            "type": "object",
            "default": {},
            "properties": {
                "min": {"type": "integer", "default": 1},
                "max": {"type": "integer", "default": 10},
            },
        },
        "probe": {
            "type": "object",
            "properties": {"path": {"type": "string", "default": "/healthz"}},
        },
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"protocol": {"type": "string", "default": "TCP"}},
            },
        },
        "env": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"secret": {"type": "boolean", "default": False}},
            },
        },
    }
)


def test_defaults_fill_absent_fields_recursively() -> None:
    source = obj(
        {"note": None, "gone": None, "maybe": None, "ports": [{"name": "a"}], "env": {"A": {}}}
    )
    before = copy.deepcopy(source)
    spec = apply_defaults(source, DEFAULTS_SCHEMA)["spec"]
    assert source == before
    assert spec == {
        "replicas": 1,
        "note": "none",
        "maybe": None,
        "scaling": {"min": 1, "max": 10},
        "ports": [{"name": "a", "protocol": "TCP"}],
        "env": {"A": {"secret": False}},
    }


def test_defaults_never_create_absent_parents() -> None:
    spec = apply_defaults(obj({"replicas": 3}), DEFAULTS_SCHEMA)["spec"]
    assert "probe" not in spec
    assert spec["replicas"] == 3


def test_defaults_leave_an_absent_spec_alone() -> None:
    source = {"apiVersion": "gati.dev/v1", "kind": "GatiHandler", "metadata": {"name": "h"}}
    assert apply_defaults(source, DEFAULTS_SCHEMA) == source


# ------------------------------------------------------------------------------- pruning

PRUNE_SCHEMA = spec_schema(
    properties={
        "known": {"type": "string"},
        "nested": {"type": "object", "properties": {"keep": {"type": "integer"}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "embedded": {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "properties": {"spec": {"type": "object"}},
        },
    }
)


def test_prune_drops_undeclared_fields_and_keeps_preserved_ones() -> None:
    source = {
        "apiVersion": "gati.dev/v1",
        "kind": "GatiHandler",
        "metadata": {"name": "h", "labels": {"a": "b"}, "bogus": 1},
        "status": {"dropped": True},
        "spec": {
            "known": "k",
            "unknown": "u",
            "nested": {"keep": 1, "drop": 2},
            "free": {"anything": {"deep": [1]}},
            "items": [{"name": "a", "extra": 1}],
            "labels": {"x": "y"},
            "embedded": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "junk": 1},
                "spec": {},
                "other": 1,
            },
        },
    }
    before = copy.deepcopy(source)
    dropped: list[str] = []
    result = prune(source, PRUNE_SCHEMA, dropped)
    assert source == before
    assert prune(source, PRUNE_SCHEMA) == result
    # What fieldValidation reports, in document order.
    assert dropped == [
        "metadata.bogus",
        "status",
        "spec.unknown",
        "spec.nested.drop",
        "spec.items[0].extra",
        "spec.embedded.metadata.junk",
        "spec.embedded.other",
    ]
    assert result == {
        "apiVersion": "gati.dev/v1",
        "kind": "GatiHandler",
        "metadata": {"name": "h", "labels": {"a": "b"}},
        "spec": {
            "known": "k",
            "nested": {"keep": 1},
            "free": {"anything": {"deep": [1]}},
            "items": [{"name": "a"}],
            "labels": {"x": "y"},
            "embedded": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {},
            },
        },
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["known", "nested", "keep", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["known", "nested", "free", "items", "x"]), json_values))
def test_prune_is_idempotent_and_never_crashes(spec: dict[str, Any]) -> None:
    once = prune(obj(spec), PRUNE_SCHEMA)
    assert prune(once, PRUNE_SCHEMA) == once
    validate(once, PRUNE_SCHEMA)
    apply_defaults(once, DEFAULTS_SCHEMA)


def _missing_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Paths `before` has and `after` lacks, by comparing the two (the definition)."""
    out: list[str] = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key, value in before.items():
            where = f"{path}.{key}" if path else key
            out += [where] if key not in after else _missing_paths(value, after[key], where)
    elif isinstance(before, list) and isinstance(after, list):
        for i, (b, a) in enumerate(zip(before, after, strict=False)):
            out += _missing_paths(b, a, f"{path}[{i}]")
    return out


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["known", "nested", "free", "items", "labels", "embedded", "x"]),
        json_values,
    )
)
def test_prune_reports_exactly_the_fields_it_drops(spec: dict[str, Any]) -> None:
    source = obj(spec)
    source["metadata"]["junk"] = {"x": 1}
    dropped: list[str] = []
    result = prune(source, PRUNE_SCHEMA, dropped)
    assert dropped == _missing_paths(source, result)


# ---------------------------------------------------- the project's own CRDs, fuzzed

CRD_DIR = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "crds"


def _project_schemas() -> list[dict[str, Any]]:
    schemas: list[dict[str, Any]] = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        schemas.extend(v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"])
    return schemas


def _field_names(schema: Any, out: set[str]) -> set[str]:
    if isinstance(schema, dict):
        out.update(schema.get("properties", {}))
        for child in schema.values():
            _field_names(child, out)
    elif isinstance(schema, list):
        for child in schema:
            _field_names(child, out)
    return out


PROJECT_SCHEMAS = _project_schemas()
FIELD_NAMES = sorted(_field_names(PROJECT_SCHEMAS, set())) or ["spec"]
fuzzed = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.skipif(not PROJECT_SCHEMAS, reason="deploy/crds holds no CRDs to fuzz")
@settings(max_examples=150)
@given(st.data(), st.dictionaries(st.sampled_from(FIELD_NAMES), fuzzed, max_size=6))
def test_project_crds_never_crash_admission(data: st.DataObject, spec: dict[str, Any]) -> None:
    """Any body, however wrong, yields causes or a clean object, never an exception."""
    schema = data.draw(st.sampled_from(PROJECT_SCHEMAS))
    admitted = apply_defaults(prune(obj(spec), schema), schema)
    for cause in validate(admitted, schema):
        assert cause.field
        assert cause.reason.startswith("FieldValue")
    assert compile_schema(schema)(obj(spec), None) == (admitted, validate(admitted, schema))


# ------------------------------------- one walk: the three stages fused, any schema

_NAMES = st.sampled_from(["a", "b", "apiVersion", "kind", "metadata", "x"])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 70)
    | st.floats(-3, 3, allow_nan=False)
    | st.sampled_from(["", "a", "ab", "2024-01-01", "2024-01-01T00:00:00Z", "Zm9v", "42"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_NAMES, inner, max_size=5),
    max_leaves=20,
)
_KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "boolean", "object", "array"]),
        "nullable": st.booleans(),
        "maxLength": st.integers(0, 3),
        "minLength": st.integers(0, 2),
        "pattern": st.sampled_from(["^a", "[", "\\d"]),
        "format": st.sampled_from(["date", "date-time", "byte", "uuid", "int32"]),
        "maximum": st.integers(0, 10),
        "minimum": st.integers(0, 10),
        "exclusiveMaximum": st.booleans(),
        "exclusiveMinimum": st.booleans(),
        "multipleOf": st.sampled_from([2, 0.5]),
        "enum": st.lists(_SCALARS, max_size=3),
        "default": _VALUES,
        "x-kubernetes-int-or-string": st.booleans(),
        "minItems": st.integers(0, 2),
        "maxItems": st.integers(0, 3),
        "uniqueItems": st.booleans(),
        "x-kubernetes-list-type": st.sampled_from(["set", "map", "atomic"]),
        "x-kubernetes-list-map-keys": st.just(["a"]),
        "minProperties": st.integers(0, 2),
        "maxProperties": st.integers(0, 3),
        "required": st.lists(_NAMES, max_size=2),
        "x-kubernetes-embedded-resource": st.booleans(),
        "x-kubernetes-preserve-unknown-fields": st.booleans(),
        "additionalProperties": st.just(True),
    },
)
_SCHEMAS = st.recursive(
    _KEYWORDS,
    lambda inner: st.tuples(
        _KEYWORDS,
        st.fixed_dictionaries(
            {},
            optional={
                "properties": st.dictionaries(_NAMES, inner, max_size=4),
                "items": inner,
                "additionalProperties": inner,
                "allOf": st.lists(inner, max_size=2),
                "anyOf": st.lists(inner, max_size=2),
                "oneOf": st.lists(inner, max_size=2),
                "not": inner,
            },
        ),
    ).map(lambda both: {**both[0], **both[1]}),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_SCHEMAS, st.dictionaries(_NAMES, _VALUES, max_size=6))
def test_one_walk_answers_as_prune_then_defaults_then_validate(
    schema: dict[str, Any], source: dict[str, Any]
) -> None:
    """Admission's fused walk: the same object, causes in the same order and dropped paths
    in the same order as the stages one after the other, and the write left untouched."""
    before = copy.deepcopy(source)
    staged_drops: list[str] = []
    staged = apply_defaults(prune(source, schema, staged_drops), schema)
    drops: list[str] = []
    assert compile_schema(schema)(source, drops) == (staged, validate(staged, schema))
    assert drops == staged_drops
    assert source == before


def test_orders_of_causes_and_drops_where_defaults_and_pruning_meet() -> None:
    """Causes follow the stored object's order (defaults added last, a null replaced where
    it stood); drops follow the write's order, cut metadata in its place among them."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "required": ["need"],
                "properties": {
                    "a": {"type": "string", "default": 1},
                    "b": {"type": "integer", "default": "two"},
                    "c": {"type": "object", "properties": {"d": {"type": "string"}}},
                    "need": {"type": "string"},
                },
            }
        },
    }
    source = obj(
        {
            "zz": 1,
            "c": {"d": 5, "y": 1},
            "metadata": {"name": "m", "bogus": 1},
            "b": None,
            "q": 2,
        }
    )
    drops: list[str] = []
    out, causes = compile_schema(schema)(source, drops)
    assert drops == ["spec.zz", "spec.c.y", "spec.metadata.bogus", "spec.q"]
    assert list(out["spec"]) == ["c", "metadata", "b", "a"]
    assert [c.field for c in causes] == [
        "spec.c.d",
        "spec.b",
        "spec.a",
        "spec.need",
        "spec.apiVersion",
        "spec.kind",
    ]


def test_an_empty_any_of_or_one_of_refuses_the_value_instead_of_failing() -> None:
    schema = spec_schema(properties={"v": {"anyOf": []}, "w": {"oneOf": []}})
    assert validate(obj({"v": 1, "w": 2}), schema) == [
        Cause(
            "spec.v",
            "FieldValueInvalid",
            'Invalid value: "": "spec.v" must validate at least one schema (anyOf)',
        ),
        Cause(
            "spec.w",
            "FieldValueInvalid",
            'Invalid value: "": "spec.w" must validate one and only one schema (oneOf). '
            "Found none valid",
        ),
    ]
