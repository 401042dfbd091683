"""fieldsV1 and conflict-path spellings, identical to the API server's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_kubesim.fieldpath import (
    Path,
    decode_fields,
    encode_fields,
    field_element,
    index_element,
    key_element,
    path_string,
    value_element,
)

CONTAINER = key_element({"name": "nginx"})
PORT = key_element({"protocol": "TCP", "containerPort": 80})


def test_encoding_matches_the_api_server() -> None:
    containers = (field_element("spec"), field_element("containers"))
    paths: set[Path] = {
        (*containers, CONTAINER),
        (*containers, CONTAINER, field_element("image")),
        (*containers, CONTAINER, field_element("ports"), PORT),
        (field_element("metadata"), field_element("finalizers"), value_element("a")),
        (field_element("spec"), field_element("replicas")),
    }
    assert encode_fields(paths) == {
        "f:metadata": {"f:finalizers": {'v:"a"': {}}},
        "f:spec": {
            "f:containers": {
                'k:{"name":"nginx"}': {
                    ".": {},
                    "f:image": {},
                    "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}},
                }
            },
            "f:replicas": {},
        },
    }
    assert decode_fields(encode_fields(paths)) == paths


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((field_element("spec"), field_element("replicas")), ".spec.replicas"),
        ((field_element("c"), CONTAINER, field_element("image")), '.c[name="nginx"].image'),
        ((field_element("p"), PORT), '.p[containerPort=80,protocol="TCP"]'),
        ((field_element("f"), value_element("x")), '.f[="x"]'),
        ((field_element("a"), index_element(2)), ".a[2]"),
    ],
)
def test_conflict_path_spelling(path: Path, text: str) -> None:
    assert path_string(path) == text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([], "must be a JSON object"),
        ({"x:y": {}}, "expected f:, k:, v: or i:"),
        ({"f:a": 1}, "must hold an object"),
        ({"k:{bad": {}}, "valid JSON"),
        ({"k:[1]": {}}, "JSON object of key fields"),
        ({"i:x": {}}, "non-negative index"),
    ],
)
def test_malformed_fields_name_the_entry(fields: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_fields(fields)


elements = st.one_of(
    st.builds(field_element, st.sampled_from(["a", "b", "spec", "x.y"])),
    st.builds(
        key_element,
        st.dictionaries(st.sampled_from(["name", "port"]), st.integers(0, 3), min_size=1),
    ),
    st.builds(value_element, st.one_of(st.integers(0, 3), st.text(max_size=2))),
    st.builds(index_element, st.integers(0, 3)),
)


@given(st.sets(st.lists(elements, min_size=1, max_size=4).map(tuple), max_size=8))
def test_encode_decode_round_trip(paths: set[Path]) -> None:
    assert decode_fields(encode_fields(paths)) == paths


@given(
    st.dictionaries(
        st.text(max_size=3),
        st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.none()),
        min_size=1,
        max_size=3,
    )
)
def test_a_key_element_is_the_canonical_json_of_its_key_fields(key: dict[str, Any]) -> None:
    """One key field or several: compact JSON with sorted keys, as the API server writes."""
    canonical = json.dumps(key, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert key_element(key) == ("k", canonical)


def _server_order(node: dict[str, Any]) -> bool:
    """`"."` first, then children by kind (f, k, v, i) and payload, at every level."""
    children = [key for key in node if key != "."]
    rank = {"f": 0, "k": 1, "v": 2, "i": 3}

    def order(key: str) -> tuple[int, str | int]:
        ((element,),) = decode_fields({key: {}})
        return (rank[element[0]], element[1])

    return (
        ("." not in node or next(iter(node)) == ".")
        and children == sorted(children, key=order)
        and all(_server_order(node[key]) for key in children)
    )


def test_positions_come_after_keys_and_values_of_the_same_list() -> None:
    # Letters sort i before k and v; the server puts positions last, "." first.
    items = (field_element("items"),)
    paths: set[Path] = {
        items,
        (*items, index_element(10)),
        (*items, index_element(2), field_element("a")),
        (*items, value_element("b")),
        (*items, key_element({"name": "x"})),
        (*items, key_element({"name": "x"}), field_element("f")),
    }
    encoded = encode_fields(paths)["f:items"]
    assert list(encoded) == [".", 'k:{"name":"x"}', 'v:"b"', "i:2", "i:10"]
    assert encoded["i:2"] == {"f:a": {}}
    assert decode_fields({"f:items": encoded}) == paths


@given(st.sets(st.lists(elements, min_size=1, max_size=4).map(tuple), max_size=12))
def test_encoding_keeps_the_api_servers_order(paths: set[Path]) -> None:
    assert _server_order(encode_fields(paths))
