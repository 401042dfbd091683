"""The protobuf subset: hand-encoded bodies decode to the JSON a client would have sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_kubesim.protobuf import MAGIC, ProtobufError, decode


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _entry(key: str, value: bytes) -> bytes:
    return _field(1, key.encode()) + _field(2, value)


def _envelope(kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, b"v1") + _field(2, kind.encode())
    return MAGIC + _field(1, type_meta) + _field(2, raw)


_keys = st.from_regex(r"[a-z][a-z0-9.-]{0,10}", fullmatch=True)


@given(st.dictionaries(_keys, st.text(max_size=20), max_size=5), _keys)
def test_config_maps_decode_to_their_json(data: dict[str, str], name: str) -> None:
    meta = _field(1, name.encode()) + _field(14, b"example.com/keep")
    raw = _field(1, meta) + b"".join(_field(2, _entry(k, v.encode())) for k, v in data.items())
    obj = decode(_envelope("ConfigMap", raw))
    expected = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "finalizers": ["example.com/keep"]},
    }
    if data:
        expected["data"] = data
    assert obj == expected


def test_secret_bytes_become_base64() -> None:
    raw = _field(1, _field(1, b"s")) + _field(2, _entry("pw", b"\x00\xff")) + _field(3, b"Opaque")
    assert decode(_envelope("Secret", raw))["data"] == {"pw": "AP8="}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "magic"),
        (_envelope("Pod", b""), "not v1/Pod"),
        (MAGIC + b"\x0a\x05ab", "truncated"),
    ],
)
def test_what_cannot_be_decoded_is_named(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode(body)
