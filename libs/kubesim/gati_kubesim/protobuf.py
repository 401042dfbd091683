"""Reading the Kubernetes protobuf encoding for the few kinds `kubectl create` sends in it.

kubectl's typed clients (`kubectl create namespace|configmap|secret`) send protobuf bodies
and do not fall back to JSON on 415. Decoding the whole API in protobuf is out of scope;
these kinds and ObjectMeta are small, so their field numbers (from the API's generated.proto)
are listed here and anything else still gets 415 naming what to use instead.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    """A body that is not a protobuf encoding this module knows."""


# A schema maps field number -> (json name, kind, repeated). Kinds: str, bytes, int, bool,
# map (string->string), bmap (string->bytes, base64 in JSON), or a nested schema dict.
Schema = dict[int, tuple[str, Any, bool]]

OWNER_REFERENCE: Schema = {
    1: ("kind", "str", False),
    3: ("name", "str", False),
    4: ("uid", "str", False),
    5: ("apiVersion", "str", False),
    6: ("controller", "bool", False),
    7: ("blockOwnerDeletion", "bool", False),
}
OBJECT_META: Schema = {
    1: ("name", "str", False),
    2: ("generateName", "str", False),
    3: ("namespace", "str", False),
    5: ("uid", "str", False),
    6: ("resourceVersion", "str", False),
    7: ("generation", "int", False),
    11: ("labels", "map", False),
    12: ("annotations", "map", False),
    13: ("ownerReferences", OWNER_REFERENCE, True),
    14: ("finalizers", "str", True),
}
KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {
        1: ("metadata", OBJECT_META, False),
        2: ("spec", {1: ("finalizers", "str", True)}, False),
    },
    ("v1", "ConfigMap"): {
        1: ("metadata", OBJECT_META, False),
        2: ("data", "map", False),
        3: ("binaryData", "bmap", False),
        4: ("immutable", "bool", False),
    },
    ("v1", "Secret"): {
        1: ("metadata", OBJECT_META, False),
        2: ("data", "bmap", False),
        3: ("type", "str", False),
        4: ("stringData", "map", False),
        5: ("immutable", "bool", False),
    },
}
_UNKNOWN: Schema = {
    1: ("typeMeta", {1: ("apiVersion", "str", False), 2: ("kind", "str", False)}, False),
    2: ("raw", "bytes", False),
    3: ("contentEncoding", "str", False),
    4: ("contentType", "str", False),
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string field")
    return value.decode()


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue  # fields kubectl never sets on create (timestamps, status)
        name, kind, repeated = schema[number]
        decoded: Any
        if kind in ("map", "bmap"):
            if not isinstance(value, bytes):
                raise ProtobufError(f"{name}: expected a map entry")
            entry = dict(_fields(value))
            key = _text(entry.get(1, b""))
            raw = entry.get(2, b"")
            if not isinstance(raw, bytes):
                raise ProtobufError(f"{name}: expected bytes")
            out.setdefault(name, {})[key] = (
                raw.decode() if kind == "map" else base64.b64encode(raw).decode()
            )
            continue
        if kind == "str":
            decoded = _text(value)
        elif kind == "bytes":
            if not isinstance(value, bytes):
                raise ProtobufError(f"{name}: expected bytes")
            decoded = value
        elif kind == "int":
            decoded = int(value) if isinstance(value, int) else 0
        elif kind == "bool":
            decoded = bool(value)
        else:
            if not isinstance(value, bytes):
                raise ProtobufError(f"{name}: expected a message")
            decoded = _message(value, kind)
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of a kind in `KINDS`."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic")
    unknown = _message(body[len(MAGIC) :], _UNKNOWN)
    type_meta = unknown.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(
            f"protobuf bodies are understood for {', '.join(k for _, k in KINDS)} only, "
            f"not {api_version}/{kind}; send JSON (e.g. kubectl apply -f) instead"
        )
    obj = _message(unknown.get("raw", b""), schema)
    return {"apiVersion": api_version, "kind": kind, **obj}
