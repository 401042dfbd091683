"""Owned object names are RFC 1035 labels, kept when already valid, distinct otherwise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.fieldtypes import DNS_SUBDOMAIN_PATTERN
from gati_contracts.ownership import is_rfc1035_label, owned_name

object_names = st.from_regex(DNS_SUBDOMAIN_PATTERN, fullmatch=True).filter(lambda n: len(n) <= 63)
suffixes = st.sampled_from(["", "-env", "-x"])


@pytest.mark.parametrize(
    ("base", "suffix", "expected"),
    [("users-v2", "", "users-v2"), ("users-v2", "-env", "users-v2-env"), ("a", "", "a")],
)
def test_valid_names_are_kept(base: str, suffix: str, expected: str) -> None:
    assert owned_name(base, suffix) == expected


@pytest.mark.parametrize(
    ("base", "suffix", "start", "end"),
    [
        ("users.v2", "", "users-v2-", ""),
        ("2fa", "", "g-2fa-", ""),
        ("9", "", "g-9-", ""),
        ("x" * 64, "", "x" * 54 + "-", ""),
        ("x" * 60, "-env", "x" * 50 + "-", "-env"),
    ],
)
def test_invalid_names_are_respelled_with_a_digest(
    base: str, suffix: str, start: str, end: str
) -> None:
    name = owned_name(base, suffix)
    assert is_rfc1035_label(name)
    assert name.startswith(start)
    assert name.endswith(end)


def test_a_suffix_must_itself_be_name_characters() -> None:
    with pytest.raises(ValueError, match="suffix"):
        owned_name("users", ".env")


@given(object_names, suffixes)
def test_every_object_name_gives_a_valid_name(base: str, suffix: str) -> None:
    assert is_rfc1035_label(owned_name(base, suffix))


@given(object_names, object_names, suffixes)
def test_distinct_names_stay_distinct(first: str, second: str, suffix: str) -> None:
    if first != second:
        assert owned_name(first, suffix) != owned_name(second, suffix)
