"""Handler paths become valid, readable and distinct label values."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.fieldtypes import HANDLER_PATH_PATTERN, LABEL_VALUE_PATTERN
from gati_reconciler.path_label import path_label_value

LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
paths = st.from_regex(HANDLER_PATH_PATTERN, fullmatch=True).filter(lambda p: len(p) <= 1024)


def assert_label_value(value: str) -> None:
    assert len(value) <= 63, value
    assert LABEL_VALUE.fullmatch(value), value


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/users", "api.users"),
        ("/users", "users"),
        ("/v2/orders_by-day", "v2.orders_by-day"),
        ("/CamelCase/Path", "CamelCase.Path"),
    ],
)
def test_plain_paths_read_as_themselves(path: str, expected: str) -> None:
    assert path_label_value(path) == expected


@pytest.mark.parametrize(
    ("path", "readable_start"),
    [
        ("/", "root-"),
        ("/users/:id", "users._id-"),
        ("/users/{id}", "users._id-"),
        ("/users/", "users-"),
        ("/a.b", "a.b-"),
        ("/~tilde", "tilde-"),
        ("/" + "x" * 100, "x" * 52 + "-"),
    ],
)
def test_paths_that_do_not_read_back_exactly_carry_a_digest(path: str, readable_start: str) -> None:
    value = path_label_value(path)
    assert_label_value(value)
    assert value.startswith(readable_start)
    assert re.fullmatch(r".*-[0-9a-f]{10}", value)


def test_lookalike_paths_stay_apart() -> None:
    lookalikes = ["/a/b", "/a.b", "/a/b/", "/a:b", "/a;b", "/a_b", "/a//b"]
    assert len({path_label_value(path) for path in lookalikes}) == len(lookalikes)


@given(paths)
def test_every_path_is_a_valid_label_value(path: str) -> None:
    assert_label_value(path_label_value(path))


@given(st.text(max_size=200))
def test_any_text_is_a_valid_label_value(text: str) -> None:
    assert_label_value(path_label_value(text))


@given(paths, paths)
def test_distinct_paths_give_distinct_values(first: str, second: str) -> None:
    if first != second:
        assert path_label_value(first) != path_label_value(second)
