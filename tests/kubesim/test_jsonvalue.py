"""Decoded-JSON comparison as the API server does it, not as Python's `==` does."""

from __future__ import annotations

from typing import Any

import pytest

from gati_kubesim.jsonvalue import go_kind, json_equal, json_type


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (True, 1, False),
        (False, 0, False),
        (1, 1.0, True),
        ({"a": [1, True]}, {"a": [1.0, True]}, True),
        ({"a": [1, True]}, {"a": [1, 1]}, False),
        ([1, 2], [1, 2, 3], False),
        (None, None, True),
        ("1", 1, False),
        (1, "1", False),
        ("a", "a", True),
        ("a", "b", False),
    ],
)
def test_json_equal(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal


def test_type_names() -> None:
    values: list[Any] = [None, True, 1, 1.5, "s", [], {}]
    assert [json_type(v) for v in values] == [
        "null",
        "boolean",
        "integer",
        "number",
        "string",
        "array",
        "object",
    ]
    assert go_kind(1) == go_kind(1.5) == "number"


class _Name(str):
    """A str subclass: not what a decoder yields, but typed by what it is all the same."""


class _Count(int):
    pass


def test_subclasses_are_typed_by_their_base() -> None:
    assert json_type(_Name("x")) == "string"
    assert json_type(_Count(3)) == "integer"
    assert go_kind(_Count(3)) == "number"
    assert json_equal(_Name("x"), "x")
