"""The config hash is a pod-template annotation: a new value for the same env rolls every pod,
so the digests are pinned to what the first release wrote and checked against its encoding."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_reconciler.hashing import config_hash

PINNED = [
    ({}, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
    (
        {"LOG_LEVEL": "info", "REVISION": "3"},
        "3ab2c36c0d01cad325d9ded82cb4413570c47454d8ffa461504cf4c8f6e30b36",
    ),
    (
        {"Z": "last", "A": "first"},
        "1e45f57db89d8ccc5c74588253b21d3e7fd3d8f0b5679b4567e49a82385160a3",
    ),
    (
        {"GREETING": 'grüß dich "quoted" \\ back\nnew\ttab \x01 \u2028 😀'},
        "9e321c1c1efa266e6b618be571a335d46538991fe10eb01c23e81d5de470988e",
    ),
]


def first_release_hash(data: dict[str, str]) -> str:
    """The encoding the annotation was introduced with."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("data", "digest"), PINNED)
def test_digests_of_earlier_releases_are_kept(data: dict[str, str], digest: str) -> None:
    assert config_hash(data) == digest


def test_key_order_does_not_change_the_digest() -> None:
    assert config_hash({"A": "1", "B": "2"}) == config_hash({"B": "2", "A": "1"})


# Text as JSON decodes it: any code point but a lone surrogate, which no bus message carries.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@given(st.dictionaries(TEXT, TEXT, max_size=6))
def test_the_digest_is_the_first_release_encoding_of_any_data(data: dict[str, str]) -> None:
    assert config_hash(data) == first_release_hash(data)
