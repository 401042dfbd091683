"""Anything the API server would accept under the generated CRDs either parses or becomes an
`InvalidObjectError` with problems: never another exception inside a service (issue 11)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gati_contracts.crds import custom_resource_definitions
from gati_contracts.objects import InvalidObjectError, parse_object

JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under a structural schema (CEL rules aside), biased toward its edges."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "type" not in schema:
        return ANY_JSON
    if schema.get("x-kubernetes-int-or-string"):
        return st.integers(min_value=0) | st.from_regex(schema["pattern"], fullmatch=True)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema["type"]
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
        if "pattern" in schema:
            text = st.from_regex(schema["pattern"], fullmatch=True)
        else:
            text = st.text(max_size=20)
        return text.filter(lambda s: len(s) <= schema.get("maxLength", 10**9))
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
            exclude_min=bool(schema.get("exclusiveMinimum")),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(
            from_schema(schema["items"]),
            min_size=schema.get("minItems", 0),
            unique=schema.get("x-kubernetes-list-type") == "set",
            max_size=min(schema.get("maxItems", 3), 3),
        )
    if "additionalProperties" in schema:
        return st.dictionaries(
            st.text(max_size=8), from_schema(schema["additionalProperties"]), max_size=3
        )
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: from_schema(sub) for name, sub in properties.items() if name in required},
        optional={
            name: from_schema(sub) for name, sub in properties.items() if name not in required
        },
    )


def objects() -> st.SearchStrategy[dict[str, Any]]:
    options = []
    for crd in custom_resource_definitions():
        version = crd["spec"]["versions"][0]
        props = version["schema"]["openAPIV3Schema"]["properties"]
        options.append(
            st.fixed_dictionaries(
                {
                    "apiVersion": st.just(f"{crd['spec']['group']}/{version['name']}"),
                    "kind": st.just(crd["spec"]["names"]["kind"]),
                    "metadata": st.fixed_dictionaries(
                        {"name": st.just("x"), "namespace": st.just("ns")}
                    ),
                    "spec": from_schema(props["spec"]),
                },
                optional={"status": from_schema(props["status"])},
            )
        )
    return st.one_of(options)


@settings(
    max_examples=200, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(objects())
def test_server_accepted_objects_parse_or_fail_with_problems(obj: dict[str, Any]) -> None:
    try:
        parsed = parse_object(obj)
    except InvalidObjectError as error:
        problems = error.problems
    else:
        assert parse_object(parsed.to_wire()) == parsed
        return
    assert problems
    assert all(problem.message for problem in problems)
