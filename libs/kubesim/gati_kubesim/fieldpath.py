"""Field paths and sets of them, in the two spellings clients see.

Server-side apply records ownership as sets of paths into an object. Clients read them in
two forms: `metadata.managedFields[].fieldsV1` (`{"f:spec":{"f:replicas":{}}}`, with `k:`
for keyed list items, `v:` for set items, `i:` for positions and `"."` for a node that is
itself owned) and the paths of a 409 conflict message (`.spec.replicas`,
`.spec.template.spec.containers[name="nginx"].image`). Both spellings are kept identical to
the API server's so that tools parsing them (kubectl among them) work unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# ("f", name) | ("k", canonical JSON object of key fields) | ("v", canonical JSON) | ("i", index)
PathElement = tuple[str, str | int]
Path = tuple[PathElement, ...]

_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form `k:`/`v:` elements carry."""
    if isinstance(value, str) and value.isascii() and value.isprintable():
        if '"' not in value and "\\" not in value:
            return f'"{value}"'
    elif isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def field_element(name: str) -> PathElement:
    return ("f", name)


def key_element(key: Mapping[str, Any]) -> PathElement:
    # Built field by field: keyed list items are the hot path of every apply and of every
    # status write's conditions. Most lists are keyed by one field (name, type, port),
    # which needs no sorting and no join.
    if len(key) == 1:
        for name, value in key.items():
            return ("k", "{" + canonical_json(name) + ":" + canonical_json(value) + "}")
    fields = ",".join(f"{canonical_json(k)}:{canonical_json(key[k])}" for k in sorted(key))
    return ("k", "{" + fields + "}")


def value_element(value: Any) -> PathElement:
    return ("v", canonical_json(value))


def index_element(index: int) -> PathElement:
    return ("i", index)


def parse_dotted(path: str) -> Path:
    """`"metadata.labels"` → the path of that field (dotted names as reset fields use them)."""
    return tuple(field_element(part) for part in path.split(".") if part)


def path_string(path: Path) -> str:
    """A path as the API server prints it in conflict messages."""
    parts = []
    for kind, payload in path:
        if kind == "f":
            parts.append(f".{payload}")
        elif kind == "k":
            key = json.loads(str(payload))
            parts.append("[" + ",".join(f"{k}={canonical_json(key[k])}" for k in sorted(key)) + "]")
        elif kind == "v":
            parts.append(f"[={payload}]")
        else:
            parts.append(f"[{payload}]")
    return "".join(parts)


def element_key(element: PathElement) -> str:
    kind, payload = element
    return f"{kind}:{payload}"


def _sort_key(element: PathElement) -> tuple[int, str | int]:
    return (_RANK[element[0]], element[1])


def encode_fields(paths: Iterable[Path]) -> dict[str, Any]:
    """A set of paths as `fieldsV1` JSON, children in the API server's order.

    One sort of the whole set puts every node's children in that order as they are first
    met, and a path before the paths below it: so a node that is itself a member is still
    empty when the first path below it arrives, which is when its `"."` goes in first. Every
    write that takes fields encodes them; this is half the cost of a trie sorted node by node.

    The sort compares the paths themselves, without a key per path (a third of its cost):
    kinds sort as their letters, which is the server's order (f, k, v, i) except for `i`,
    so a node given positions as well as keys or values moves its positions last after.
    """
    out: dict[str, Any] = {}
    positioned: list[dict[str, Any]] = []
    for path in sorted(paths):
        if not path:
            continue
        node = out
        for kind, payload in path[:-1]:
            key = f"{kind}:{payload}"
            child = node.get(key)
            if child is None:
                child = node[key] = {}
                if kind == "i":
                    positioned.append(node)
            elif not child:
                child["."] = {}  # only a member is met empty: a passed-through node has a child
            node = child
        kind, payload = path[-1]
        node[f"{kind}:{payload}"] = {}
        if kind == "i":
            positioned.append(node)
    for node in positioned:
        _positions_last(node)
    return out


def _positions_last(node: dict[str, Any]) -> None:
    """Move a node's `i:` children after its `k:` and `v:` ones, each kind in its order."""
    children = list(node.items())
    node.clear()
    node.update(child for child in children if not child[0].startswith("i:"))
    node.update(child for child in children if child[0].startswith("i:"))


def fields_node(
    children: Iterable[tuple[PathElement, dict[str, Any]]], owned: bool
) -> dict[str, Any]:
    """One `fieldsV1` node from its encoded children, in the API server's order.

    `owned` marks the node itself a member; a member without children is spelled `{}`, so
    the `"."` entry only appears beside children.
    """
    out: dict[str, Any] = {}
    ordered = sorted(children, key=lambda child: _sort_key(child[0]))
    if owned and ordered:
        out["."] = {}
    for element, sub in ordered:
        out[element_key(element)] = sub
    return out


def decode_fields(fields: Any) -> set[Path]:
    """`fieldsV1` JSON back to a set of paths; `ValueError` names what is malformed."""
    if not isinstance(fields, dict):
        raise ValueError(f"fieldsV1 must be a JSON object, got {type(fields).__name__}")
    out: set[Path] = set()
    _decode_node(fields, (), out)
    return out


def _decode_node(node: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for raw, child in node.items():
        if raw == ".":
            if prefix:
                out.add(prefix)
            continue
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1 entry {raw!r} must hold an object")
        path = (*prefix, _parse_element(raw))
        if child:
            _decode_node(child, path, out)
        else:
            out.add(path)


def _parse_element(raw: str) -> PathElement:
    kind, sep, payload = raw.partition(":")
    if not sep or kind not in _RANK:
        raise ValueError(
            f"fieldsV1 key {raw!r} is not a path element; expected f:, k:, v: or i: prefix"
        )
    if kind == "f":
        return ("f", payload)
    if kind == "i":
        if not payload.isdigit():
            raise ValueError(f"fieldsV1 key {raw!r} needs a non-negative index")
        return ("i", int(payload))
    try:
        decoded = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ValueError(f"fieldsV1 key {raw!r} does not hold valid JSON: {exc.msg}") from exc
    if kind == "k":
        if not isinstance(decoded, dict):
            raise ValueError(f"fieldsV1 key {raw!r} must hold a JSON object of key fields")
        return key_element(decoded)
    return value_element(decoded)
