"""The three patch formats of the Kubernetes API: JSON merge, strategic merge and JSON patch.

Clients that nobody here wrote (kubectl's client-side apply above all) compute their patches
against the real API server's semantics, including the quirks: strategic merge puts new list
items before the live ones, `$patch: delete` on a map leaves an empty map, directives inside
values that replace a missing field are dropped. Reproducing those exactly is the only way a
three-way patch computed by kubectl lands as it would on a real cluster.

All functions are pure: they never mutate their inputs and raise `PatchError` naming the
offending path or directive on bad input.
"""

from __future__ import annotations

from typing import Any

from gati_kubesim.jsonvalue import go_kind, json_copy, json_equal
from gati_kubesim.mergeschema import Node, builtin_node

JSON = Any

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


class PatchError(ValueError):
    """The patch cannot be applied; `message` says which part of it and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedPatchError(PatchError):
    """Strategic merge patch asked for a kind without patch metadata (a 415 on a real server)."""


# ---------------------------------------------------------------------------- merge patch


def json_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge recursively, `null` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        raise PatchError(
            f"a merge patch must be a JSON object, got {go_kind(patch)}; "
            "send the fields to change as an object"
        )
    result = _merge_patch_value(target if isinstance(target, dict) else {}, patch)
    assert isinstance(result, dict)
    return result


def _merge_patch_value(target: JSON, patch: JSON) -> JSON:
    if not isinstance(patch, dict):
        return json_copy(patch)
    out: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch_value(out.get(key), value)
    return out


# ------------------------------------------------------------------ strategic merge patch


def strategic_merge_supported(gvk: str) -> bool:
    """Whether `strategic_merge_patch` knows `gvk`; custom resources never qualify."""
    return builtin_node(gvk) is not None


def strategic_merge_patch(
    target: dict[str, Any], patch: dict[str, Any], gvk: str
) -> dict[str, Any]:
    """Apply a strategic merge patch to a built-in kind (`gvk` like `"apps/v1/Deployment"`).

    Merge lists (containers, env, ports, ...) merge element-wise by their merge key; other
    lists are replaced. Honours `$patch: replace|delete|merge`, `$retainKeys`,
    `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>` as kubectl sends them.
    """
    node = builtin_node(gvk)
    if node is None:
        raise UnsupportedPatchError(
            f"strategic merge patch is not supported for {gvk}; "
            "use a JSON merge patch (application/merge-patch+json) or a JSON patch instead"
        )
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, got {go_kind(patch)}")
    original = json_copy(target) if isinstance(target, dict) else {}
    return _merge_map(original, json_copy(patch), node, "")


def _merge_map(
    original: dict[str, Any] | None, patch: dict[str, Any], node: Node, where: str
) -> dict[str, Any]:
    """Merge `patch` into `original`; both are private copies and may be changed in place."""
    if _DIRECTIVE in patch:
        directive = patch.pop(_DIRECTIVE)
        if directive == "replace":
            kept, _ = _remove_directives(patch)
            return dict(kept)
        if directive == "delete":
            return {}
        raise PatchError(
            f'{_at(where)}unknown "$patch" directive {directive!r} in a map; '
            'use "replace" or "delete"'
        )
    if original is None:
        original = {}
    _apply_retain_keys(original, patch, where)
    _apply_set_element_order(original, patch, node, where)

    deletions = [k for k in patch if k.startswith(_DELETE_PRIMITIVES)]
    for key in [k for k in patch if not k.startswith(_DELETE_PRIMITIVES)] + deletions:
        value = patch[key]
        is_delete_list = key.startswith(_DELETE_PRIMITIVES)
        if is_delete_list:
            key = key[len(_DELETE_PRIMITIVES) :]
            if not key:
                raise PatchError(
                    f'{_at(where)}"{_DELETE_PRIMITIVES}" must be followed by a list field name'
                )
            if not isinstance(value, list):
                raise PatchError(
                    f'{_at(where)}"{_DELETE_PRIMITIVES}{key}" must be a list of values to delete'
                )
        path = f"{where}.{key}" if where else key
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or go_kind(original[key]) != go_kind(value):
            if not is_delete_list:
                kept_value, keep = _remove_directives(_discard_nulls(value))
                if keep:
                    original[key] = kept_value
                else:
                    original.pop(key, None)
            continue
        child = node.child(key)
        current = original[key]
        if isinstance(current, dict):
            original[key] = _merge_map(current, value, child, path)
        elif isinstance(current, list):
            original[key] = _merge_list_field(current, value, child, is_delete_list, path)
        else:
            original[key] = value
    return original


def _merge_list_field(
    original: list[Any], patch: list[Any], node: Node, is_delete_list: bool, where: str
) -> list[Any]:
    list_type = node.list_type
    if list_type is None or not list_type.patch_merge:
        kept, _ = _remove_directives(patch)
        return list(kept)
    return _merge_list(original, patch, node, list_type.patch_merge_key, is_delete_list, where)


def _merge_list(
    original: list[Any],
    patch: list[Any],
    node: Node,
    merge_key: str,
    is_delete_list: bool,
    where: str,
) -> list[Any]:
    if not original and not patch:
        return original
    is_map = _element_kind(original + patch, where) == "object"
    if not is_map:
        if is_delete_list:
            return [v for v in original if not any(json_equal(v, d) for d in patch)]
        merged = _dedupe(original + patch)
    else:
        if not merge_key:
            raise PatchError(f"{_at(where)}cannot merge a list of objects without a merge key")
        original, patch = _apply_list_directives(original, patch, merge_key, where)
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise PatchError(
                    f"{_at(where)}map: {item} does not contain declared merge key: {merge_key}"
                )
            index = _index(merged, item, merge_key)
            if index >= 0:
                merged[index] = _merge_map(merged[index], item, node.item(), where)
            else:
                kept, _ = _remove_directives(item)
                merged.append(kept)
    patch_items, server_only = _partition(merged, patch, merge_key if is_map else "")
    return _normalize_order(patch_items, server_only, patch, original, merge_key if is_map else "")


def _apply_list_directives(
    original: list[Any], patch: list[Any], merge_key: str, where: str
) -> tuple[list[Any], list[Any]]:
    """Handle `{"$patch": "delete", key: v}` and `{"$patch": "replace"}` list elements."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if _DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[_DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise PatchError(
                    f'{_at(where)}"$patch": "delete" element {item} lacks merge key {merge_key!r}'
                )
            original = [o for o in original if not json_equal(o.get(merge_key), item[merge_key])]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError(f'{_at(where)}"$patch": "merge" is not supported inside a list')
        else:
            raise PatchError(
                f'{_at(where)}unknown "$patch" directive {directive!r} in a list element; '
                'use "delete" or "replace"'
            )
    if replace:
        kept, _ = _remove_directives(plain)
        return list(kept), []
    return original, plain


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any], where: str) -> None:
    if _RETAIN_KEYS not in patch:
        return
    retain = patch.pop(_RETAIN_KEYS)
    if not isinstance(retain, list):
        raise PatchError(f'{_at(where)}"$retainKeys" must be a list of field names')
    for key, value in patch.items():
        if value is None or key.startswith((_DELETE_PRIMITIVES, _SET_ORDER)):
            continue
        if key not in retain:
            raise PatchError(
                f'{_at(where)}field {key!r} is in the patch but not in "$retainKeys" {retain}'
            )
    for key in [k for k in original if k not in retain]:
        del original[key]


def _apply_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], node: Node, where: str
) -> None:
    for directive in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(directive)
        name = directive[len(_SET_ORDER) :]
        path = f"{where}.{name}" if where else name
        if not name or not isinstance(order, list):
            raise PatchError(
                f'{_at(where)}"{directive}" must name a list field and hold a list '
                "giving the order of its elements"
            )
        orig_list = original.get(name)
        patch_list = patch.get(name)
        if orig_list is not None and not isinstance(orig_list, list):
            raise PatchError(f'{_at(path)}"{directive}" applies to a field that is not a list')
        if patch_list is not None and not isinstance(patch_list, list):
            raise PatchError(f'{_at(path)}"{directive}" is given but the patch value is no list')
        child = node.child(name)
        list_type = child.list_type
        merging = list_type is not None and list_type.patch_merge
        merge_key = list_type.patch_merge_key if list_type is not None and merging else ""
        _check_order_matches(patch_list or [], order, merge_key, directive, path)
        if orig_list is not None and patch_list is not None:
            merged = _merge_list_field(orig_list, patch_list, child, False, path)
        elif orig_list is not None:
            merged = orig_list
        elif patch_list is not None:
            kept, _ = _remove_directives(patch_list)
            merged = list(kept)
        else:
            continue
        patch.pop(name, None)
        elements = (orig_list or []) + (patch_list or [])
        if not elements:
            original[name] = merged
            continue
        key = merge_key if _element_kind(elements, path) == "object" else ""
        if key:
            _require_key(order, key, directive, path)
        patch_items, server_only = _partition(merged, order, key)
        original[name] = _normalize_order(patch_items, server_only, order, orig_list or [], key)


def _check_order_matches(
    patch_list: list[Any], order: list[Any], merge_key: str, directive: str, where: str
) -> None:
    """The patch list must be a subsequence of `$setElementOrder`, as the real server checks."""
    if not patch_list or not order:
        return
    items = patch_list
    if merge_key:
        items = [
            i for i in patch_list if not (isinstance(i, dict) and i.get(_DIRECTIVE) == "delete")
        ]
        _require_key(order, merge_key, directive, where)
    p = s = 0
    while p < len(items) and s < len(order):
        if isinstance(items[p], dict) and _DIRECTIVE in items[p]:
            p += 1
            continue
        if json_equal(_order_value(items[p], merge_key), _order_value(order[s], merge_key)):
            p += 1
        s += 1
    if p < len(items):
        raise PatchError(
            f"{_at(where)}the order of the patch list {patch_list} does not match "
            f'"{directive}" {order}; list every patched element in "{directive}"'
        )


def _require_key(items: list[Any], key: str, directive: str, where: str) -> None:
    for item in items:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f'{_at(where)}"{directive}" element {item!r} lacks merge key {key!r}')


def _order_value(item: Any, merge_key: str) -> Any:
    if merge_key:
        return item.get(merge_key) if isinstance(item, dict) else None
    return item


def _index(items: list[Any], value: Any, merge_key: str) -> int:
    wanted = _order_value(value, merge_key)
    for i, item in enumerate(items):
        if json_equal(_order_value(item, merge_key), wanted):
            return i
    return -1


def _partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    inside = [i for i in items if _index(by, i, merge_key) >= 0]
    outside = [i for i in items if _index(by, i, merge_key) < 0]
    return inside, outside


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
) -> list[Any]:
    """Patch items in patch order, live-only items in live order, interleaved as the server does.

    A live-only item goes before a patch item only when both are in the live list and it came
    first there; so brand-new patch items land in front of the live-only ones.
    """
    patch_items = _sort_by(patch_items, patch_order, merge_key)
    server_only = _sort_by(server_only, server_order, merge_key)
    out: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(patch_items):
        if j >= len(patch_items):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(patch_items[j])
            j += 1
        else:
            li = _index(server_order, server_only[i], merge_key)
            ri = _index(server_order, patch_items[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(patch_items[j])
                j += 1
    return out


def _sort_by(items: list[Any], order: list[Any], merge_key: str) -> list[Any]:
    deleted: list[Any] = []
    if merge_key:
        deleted = [i for i in items if isinstance(i, dict) and i.get(_DIRECTIVE) == "delete"]
        items = [i for i in items if not (isinstance(i, dict) and i.get(_DIRECTIVE) == "delete")]
    return sorted(items, key=lambda i: _index(order, i, merge_key)) + deleted


def _remove_directives(value: JSON) -> tuple[JSON, bool]:
    """Strip patch directives from a value that replaces a field; False drops the field."""
    if isinstance(value, dict):
        if _DIRECTIVE in value:
            return None, False
        out: dict[str, Any] = {}
        for key, child in value.items():
            if key == _RETAIN_KEYS or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES)):
                continue
            kept, keep = _remove_directives(child)
            if keep:
                out[key] = kept
        return out, True
    if isinstance(value, list):
        items = [_remove_directives(v) for v in value]
        return [v for v, keep in items if keep], True
    return value, True


def _discard_nulls(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _discard_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_discard_nulls(v) for v in value]
    return value


def _element_kind(items: list[Any], where: str) -> str:
    kinds = {go_kind(i) for i in items}
    if "array" in kinds:
        raise PatchError(f"{_at(where)}lists of lists cannot be merged")
    if len(kinds) > 1:
        raise PatchError(
            f"{_at(where)}list elements are not all of one type ({', '.join(sorted(kinds))})"
        )
    return kinds.pop() if kinds else "null"


def _dedupe(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not any(json_equal(item, seen) for seen in out):
            out.append(item)
    return out


# ---------------------------------------------------------------------------- JSON patch


def json_patch(target: dict[str, Any], ops: list[Any]) -> dict[str, Any]:
    """RFC 6902 (`add`, `remove`, `replace`, `move`, `copy`, `test`), all or nothing."""
    if not isinstance(ops, list):
        raise PatchError(f"a JSON patch must be a JSON array of operations, got {go_kind(ops)}")
    doc: JSON = json_copy(target)
    for number, op in enumerate(ops):
        doc = _apply_op(doc, op, number)
    if not isinstance(doc, dict):
        raise PatchError(f"the JSON patch turned the object into {go_kind(doc)}")
    return doc


def _apply_op(doc: JSON, op: Any, number: int) -> JSON:
    if not isinstance(op, dict):
        raise PatchError(f"operation {number} must be an object, got {go_kind(op)}")
    name = op.get("op")
    path = _require_str(op, "path", number)
    if name in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f'operation {number} ({name} at "{path}") is missing "value"')
    if name == "add":
        return _add(doc, _tokens(path, number), json_copy(op["value"]), path, number)
    if name == "remove":
        doc, _ = _remove(doc, _tokens(path, number), path, number, "remove")
        return doc
    if name == "replace":
        tokens = _tokens(path, number)
        doc, _ = _remove(doc, tokens, path, number, "replace")
        return _add(doc, tokens, json_copy(op["value"]), path, number)
    if name == "test":
        actual = _get(doc, _tokens(path, number), path, number, "test")
        if not json_equal(actual, op["value"]):
            raise PatchError(
                f'operation {number} (test at "{path}") failed: value is {actual!r}, '
                f"expected {op['value']!r}"
            )
        return doc
    if name in ("move", "copy"):
        source = _require_str(op, "from", number)
        from_tokens = _tokens(source, number)
        if name == "move":
            to_tokens = _tokens(path, number)
            if to_tokens[: len(from_tokens)] == from_tokens and to_tokens != from_tokens:
                raise PatchError(
                    f'operation {number} (move) cannot move "{source}" into its own child "{path}"'
                )
            doc, value = _remove(doc, from_tokens, source, number, "move")
        else:
            value = json_copy(_get(doc, from_tokens, source, number, "copy"))
        return _add(doc, _tokens(path, number), value, path, number)
    raise PatchError(
        f"operation {number} has unknown op {name!r}; use add, remove, replace, move, copy or test"
    )


def _require_str(op: dict[str, Any], field: str, number: int) -> str:
    value = op.get(field)
    if not isinstance(value, str):
        raise PatchError(f'operation {number} needs a string "{field}" (a JSON pointer)')
    return value


def _tokens(pointer: str, number: int) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(
            f'operation {number}: path "{pointer}" is not a JSON pointer; it must start with "/"'
        )
    tokens = []
    for raw in pointer[1:].split("/"):
        stripped = raw.replace("~0", "").replace("~1", "")
        if "~" in stripped:
            raise PatchError(
                f'operation {number}: path "{pointer}" has a "~" not followed by 0 or 1'
            )
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(container: list[Any], token: str, pointer: str, number: int, adding: bool) -> int:
    limit = len(container) if adding else len(container) - 1
    if token == "-" and adding:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f'operation {number}: "{token}" in "{pointer}" is not a valid array index')
    index = int(token)
    if index > limit:
        raise PatchError(
            f'operation {number}: index {index} in "{pointer}" is out of range '
            f"(the array has {len(container)} elements)"
        )
    return index


def _parent(doc: JSON, tokens: list[str], pointer: str, number: int, verb: str) -> JSON:
    current = doc
    for depth, token in enumerate(tokens[:-1]):
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(current, token, pointer, number, False)]
        else:
            missing = "/" + "/".join(tokens[: depth + 1])
            raise PatchError(
                f'operation {number} ({verb} at "{pointer}") does not apply: '
                f'"{missing}" does not exist'
            )
    return current


def _get(doc: JSON, tokens: list[str], pointer: str, number: int, verb: str) -> JSON:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, pointer, number, verb)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(parent, last, pointer, number, False)]
    raise PatchError(f'operation {number} ({verb} at "{pointer}") does not apply: no such value')


def _add(doc: JSON, tokens: list[str], value: JSON, pointer: str, number: int) -> JSON:
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer, number, "add")
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(parent, last, pointer, number, True), value)
    else:
        raise PatchError(
            f'operation {number} (add at "{pointer}") does not apply: the parent is '
            f"{go_kind(parent)}, not an object or array"
        )
    return doc


def _remove(
    doc: JSON, tokens: list[str], pointer: str, number: int, verb: str
) -> tuple[JSON, JSON]:
    if not tokens:
        return None, doc
    parent = _parent(doc, tokens, pointer, number, verb)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(parent, last, pointer, number, False))
    raise PatchError(f'operation {number} ({verb} at "{pointer}") does not apply: no such value')


# -------------------------------------------------------------------------------- helpers


def _at(where: str) -> str:
    return f"{where}: " if where else ""
