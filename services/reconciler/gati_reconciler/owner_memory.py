"""What one replica knows of each handler or module beyond the stream: its own status writes and
the newest generation it acted on.

A reconcile takes its object from the stream (the newest change the watcher recorded) instead of
a GET. The stream trails the API server by the watcher's lag, and the lag that matters most is
the one right after this replica's own status write: the owned Deployment's next event often
arrives before the echo of that write is recorded, and the object it would read from the stream
still shows the status before the write, with the old `resourceVersion` (a write from it would
conflict, and a first reconcile would look undone). So the status a replica wrote is kept, with
the `resourceVersion` it was written over: while the stream's newest is still that version, the
written object is the newest there is (the API server accepted the write on top of exactly it);
any other stored version is newer than the write's base, so the stream wins again.

Resource versions are only compared for equality, as the Kubernetes API conventions require;
generations are ordered integers, so `is_behind` tells a state older than one this replica
already acted on (a late redelivery published past the duplicate window) by its generation.
Bounded: the least recently used object is forgotten first, which only costs a read or a
conflict the next time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

SIZE: Final = 4096
"""Objects remembered; a forgotten one is read from the stream (or the API server) again."""
CHAIN: Final = 8
"""Writes on top of each other remembered while the stream records none of them."""


@dataclass(frozen=True)
class _Known:
    generation: int
    written_over: tuple[str, ...] = ()
    """The `resourceVersion`s this replica's status writes replaced, one on top of the other,
    since the stream last recorded one of them (the last write is on top of all of them)."""
    written: Mapping[str, Any] | None = None
    """The object as the last write left it."""


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def generation_of(obj: Mapping[str, Any]) -> int:
    """`metadata.generation`, 1 when absent (a resource without the status subresource)."""
    return int((obj.get("metadata") or {}).get("generation") or 1)


class OwnerMemory:
    def __init__(self, size: int = SIZE) -> None:
        if size < 1:
            raise ValueError(f"owner memory size must be at least 1, got {size}")
        self._size = size
        self._entries: OrderedDict[str, _Known] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def current(self, stored: Mapping[str, Any]) -> Mapping[str, Any]:
        """The newest state known of `stored` (the stream's newest): this replica's own status
        write on top of it when the stream has not recorded that write yet, else `stored`."""
        entry = self._entries.get(_uid(stored))
        version = (stored.get("metadata") or {}).get("resourceVersion")
        if entry is None or entry.written is None or version not in entry.written_over:
            return stored
        return entry.written

    def is_behind(self, obj: Mapping[str, Any]) -> bool:
        """Whether this replica already acted on a newer generation of `obj`'s incarnation."""
        entry = self._entries.get(_uid(obj))
        return entry is not None and generation_of(obj) < entry.generation

    def acted(self, obj: Mapping[str, Any]) -> None:
        """A reconcile realized `obj`'s spec; an older generation is behind from now on."""
        uid = _uid(obj)
        entry = self._entries.get(uid)
        generation = generation_of(obj)
        if entry is None or entry.generation < generation:
            self._keep(uid, _Known(generation))
        else:
            self._entries.move_to_end(uid)

    def wrote(self, base: Mapping[str, Any], status: Mapping[str, Any], version: str) -> None:
        """This replica replaced `base`'s status by `status`, which made `version`."""
        metadata = base.get("metadata") or {}
        written = {
            **base,
            "metadata": {**metadata, "resourceVersion": version},
            "status": status,
        }
        entry = self._entries.get(_uid(base))
        generation = max(generation_of(base), entry.generation if entry else 0)
        over = str(metadata.get("resourceVersion") or "")
        earlier: tuple[str, ...] = ()
        if entry is not None and entry.written is not None:
            on_top = (entry.written.get("metadata") or {}).get("resourceVersion") == over
            earlier = entry.written_over[-CHAIN + 1 :] if on_top else ()
        self._keep(_uid(base), _Known(generation, (*earlier, over), written))

    def _keep(self, uid: str, entry: _Known) -> None:
        if not uid:
            return
        self._entries[uid] = entry
        self._entries.move_to_end(uid)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
