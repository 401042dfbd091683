"""The last render of each object, reused while the object reads the same.

Validating a handler with pydantic and rendering it cost about a tenth of a reconcile, and one
object is reconciled several times per change (its own event, then each change of its
Deployment) with the same content. A render depends on nothing but the object, so it is kept per
uid with a fingerprint of what the render can depend on: the whole object but the status
(each status write would otherwise miss the next reconcile, which is the one it serves) and
`resourceVersion` and `managedFields`, which change on every write and are never validated
beyond their type. The status is read on every reconcile, where it is used
(`status.next_status`). A different fingerprint parses and renders again; a failed parse or
render is not kept, so its error is raised again each time. Bounded: the least recently used
entry goes first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

SIZE: Final = 4096
"""Objects remembered; past this the least recently reconciled is rendered again next time."""
_VOLATILE: Final = frozenset({"resourceVersion", "managedFields"})

Render = list[dict[str, Any]]


def fingerprint(live: Mapping[str, Any]) -> bytes:
    """What a parse and a render of `live` can depend on, as bytes to compare."""
    metadata = live.get("metadata") or {}
    steady = {key: value for key, value in metadata.items() if key not in _VOLATILE}
    return msgspec.json.encode(
        {key: value for key, value in live.items() if key != "status"} | {"metadata": steady}
    )


class RenderCache:
    def __init__(self, size: int = SIZE) -> None:
        if size < 1:
            raise ValueError(f"render cache size must be at least 1, got {size}")
        self._size = size
        self._entries: OrderedDict[str, tuple[bytes, int, Render]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def kept(self, uid: str) -> tuple[int, Render] | None:
        """The generation and render kept for `uid`: before a new generation is rendered, the
        render of the one before it, if this replica rendered that."""
        entry = self._entries.get(uid)
        return None if entry is None else (entry[1], entry[2])

    def render(self, live: Mapping[str, Any], make: Callable[[], Render]) -> Render:
        """`make()`'s render of `live`, or the one kept from when `live` read the same: shared
        between calls, and immutable as every render is (`gati_reconciler.manifests`)."""
        uid = str((live.get("metadata") or {}).get("uid") or "")
        key = fingerprint(live)
        entry = self._entries.get(uid)
        if entry is not None and entry[0] == key:
            self._entries.move_to_end(uid)
            return entry[2]
        rendered = make()
        if uid:
            generation = int((live.get("metadata") or {}).get("generation") or 1)
            self._entries[uid] = (key, generation, rendered)
            self._entries.move_to_end(uid)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return rendered
