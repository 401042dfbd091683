"""Digests that make rendered manifests change exactly when their inputs do.

Hex of SHA-256 rather than Python's `hash()`: the value must be the same in every process and
every release, or each reconciler replica would roll the pods with its own annotation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping


def config_hash(data: Mapping[str, str]) -> str:
    """Digest of ConfigMap data, independent of key order, so only a real change rolls pods."""
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
