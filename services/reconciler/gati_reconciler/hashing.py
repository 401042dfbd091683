"""Digests that make rendered manifests change exactly when their inputs do.

Hex of SHA-256 rather than Python's `hash()`: the value must be the same in every process and
every release, or each reconciler replica would roll the pods with its own annotation.

The digested text is fixed forever: sorted keys, no spaces, non-ASCII as UTF-8, which is what
`json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` wrote when the
annotation was introduced. msgspec writes the same bytes for string data (every code point was
compared; keys sort by code point in both) at a twentieth of the cost, and a render pays this on
every spec change. `tests/reconciler/test_hashing.py` pins digests taken with the json encoding,
so a pod template never rolls because the encoder changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import msgspec

_CANONICAL = msgspec.json.Encoder(order="sorted")


def config_hash(data: Mapping[str, str]) -> str:
    """Digest of ConfigMap data, independent of key order, so only a real change rolls pods."""
    return hashlib.sha256(_CANONICAL.encode(dict(data))).hexdigest()
