"""The differences between two renderings of one manifest, as the reconciler's diff reports them.

A replay diffs every manifest of every spec change against the previous rendering, and two
renderings differ in a handful of fields (an image, a config hash) among hundreds that are
equal. `gati_reconciler.diff.object_changes` visits every field; this walk compares whole
subtrees first (one C-level `==`) and descends only where they differ, which made the diff the
cheapest part of a replay instead of the costliest. It reports exactly what `object_changes`
reports, in the same order (a property test holds the two together), for values as JSON decodes
them: dicts, lists, strings, numbers, booleans and null.
"""

from __future__ import annotations

from typing import Any

from gati_contracts.quantities import parse_quantity
from gati_reconciler.diff import ABSENT, SERVER_METADATA, Change


def manifest_changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """`object_changes(before, after)`, descending only into what differs."""
    changes: list[Change] = []
    if before is after:
        return changes  # a manifest the renderer reused whole (see gati_reconciler.manifests)
    _mappings(before, after, "", changes)
    return changes


def _mappings(before: dict[str, Any], after: dict[str, Any], path: str, out: list[Change]) -> None:
    skipped = _ignored_at(path)
    for key, value in after.items():
        old = before.get(key, ABSENT)
        if old is not value and old != value and key not in skipped:
            _values(old, value, f"{path}.{key}" if path else key, out)
    if before.keys() <= after.keys():
        return  # nothing gone: two renderings mostly hold the same fields
    gone = [key for key in before if key not in after and key not in skipped]
    for key in sorted(gone):
        _values(before[key], ABSENT, f"{path}.{key}" if path else key, out)


def _ignored_at(path: str) -> frozenset[str]:
    """What the diff never reports under `path`: status, and metadata the server writes."""
    if path == "":
        return _STATUS
    return SERVER_METADATA if path == "metadata" else _NOTHING


_STATUS = frozenset({"status"})
_NOTHING: frozenset[str] = frozenset()


def _values(before: Any, after: Any, path: str, out: list[Change]) -> None:
    """Two values already known to differ (or one absent)."""
    if type(before) is dict and type(after) is dict:
        _mappings(before, after, path, out)
        return
    old, new = _by_name(before), _by_name(after)
    if old is not None and new is not None:
        # Containers, env, ports: merged by name, as Kubernetes merges them.
        for name, item in new.items():
            previous = old.get(name, ABSENT)
            if previous is not item and previous != item:
                _values(previous, item, f"{path}[name={name}]", out)
        for name, item in old.items():
            if name not in new:
                _values(item, ABSENT, f"{path}[name={name}]", out)
    elif not _same_quantity(before, after, path):
        out.append(Change(path, before, after))


def _by_name(value: Any) -> dict[str, dict[str, Any]] | None:
    """A list of objects that all carry a string `name`, keyed by it (the last of a repeated
    name, as the diff keys them); None for any other value."""
    if type(value) is not list:
        return None
    items: dict[str, dict[str, Any]] = {}
    for item in value:
        if type(item) is not dict or type(name := item.get("name")) is not str:
            return None
        items[name] = item
    return items


def _same_quantity(before: Any, after: Any, path: str) -> bool:
    """Unequal values that are still the same: quantities the server rewrites (`1000m` is
    stored as `1`) under `resources`."""
    if ".resources." not in f"{path}." or type(before) is not str or type(after) is not str:
        return False
    try:
        return parse_quantity(before) == parse_quantity(after)
    except ValueError:
        return False
