"""Watch fan-out: a bounded event history per resource and the open watches fed from it.

History lets a client resume from the resourceVersion it last saw without gaps; once the
history no longer reaches back that far (trimmed, or compacted by a test hook) the client
must be told `410 Expired` rather than silently miss changes. Each event is encoded once and
the same bytes go to every watcher, which is what keeps fan-out cheap; the write that made
the event answers its client with the object's bytes from that encoding (`encoded_object`)
instead of encoding the same ~5 KB object a second time. An open watch writes its events to
its client itself, once per loop pass (`Watcher.attach`), rather than waking its HTTP task for
every event: that wake-up cost more than the write.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from gati_kubesim import bounded
from gati_kubesim.errors import expired

_encode = msgspec.json.Encoder().encode
_ENCODED_MAX = 64
"""A write's answer follows its event within the same request, so a few suffice."""
_encoded: dict[int, tuple[Mapping[str, Any], bytes]] = {}
"""Objects events have encoded, by identity (held, so an id is not reused meanwhile)."""


def encoded_object(obj: Mapping[str, Any]) -> bytes | None:
    """`obj`'s JSON if an event encoded this very object lately, else None.

    Stored objects are never mutated, so the bytes an event made of one stay its bytes.
    """
    known = _encoded.get(id(obj))
    return known[1] if known is not None and known[0] is obj else None


@dataclass(slots=True)
class WatchEvent:
    """One change to one object; `old` lets selector-filtered watches see transitions."""

    type: str
    rv: int
    obj: dict[str, Any]
    old: dict[str, Any] | None = None
    _line: bytes | None = None

    @property
    def namespace(self) -> str:
        ns: str = self.obj["metadata"].get("namespace", "")
        return ns

    def line(self) -> bytes:
        if self._line is None:
            body = _encode(self.obj)
            _encoded[id(self.obj)] = (self.obj, body)
            bounded.trim(_encoded, _ENCODED_MAX)
            # What encode_event writes, byte for byte: msgspec keeps the keys' order.
            self._line = b'{"type":' + _encode(self.type) + b',"object":' + body + b"}\n"
        return self._line


def encode_event(event_type: str, obj: Mapping[str, Any]) -> bytes:
    return _encode({"type": event_type, "object": obj}) + b"\n"


Render = Callable[[str, dict[str, Any]], bytes]
Sink = Callable[[bytes], bool]
"""Sends a watch's bytes to its client now; False (nothing sent) while the client is not
reading, raises ConnectionResetError once it has gone."""


@dataclass(eq=False)
class Watcher:
    """An open watch: what it selects and the lines waiting to be written to its client."""

    namespace: str | None
    matcher: Callable[[Mapping[str, Any]], bool] | None
    render: Render | None = None
    # Objects stored at another version than the watcher's are converted (and encoded for
    # this watcher alone); objects already at its version share the event's encoding.
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    max_pending: int = 20_000
    pending: deque[bytes] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    # Set by the fault hook: the connection stays open but nothing reaches the client.
    silent: bool = False
    overflowed: bool = False
    sink: Sink | None = None
    _flush_due: bool = False
    _loop: asyncio.AbstractEventLoop | None = None

    def offer(self, event: WatchEvent) -> None:
        if self.closed or self.silent:
            return
        if self.namespace and event.namespace != self.namespace:
            return
        event_type = event.type
        obj = self.convert(event.obj) if self.convert is not None else event.obj
        if self.matcher is not None:
            now = self.matcher(obj)
            old = event.old
            if old is not None and self.convert is not None:
                old = self.convert(old)
            before = old is not None and self.matcher(old)
            if event_type == "MODIFIED":
                if now and not before:
                    event_type = "ADDED"
                elif before and not now:
                    event_type = "DELETED"
                elif not now:
                    return
            elif not now:
                return
        if event_type == event.type and self.render is None and obj is event.obj:
            self.push(event.line())
        else:
            self.push(self._render(event_type, obj))

    def _render(self, event_type: str, obj: dict[str, Any]) -> bytes:
        if self.render is not None:
            return self.render(event_type, obj)
        return encode_event(event_type, obj)

    def push(self, line: bytes) -> None:
        if len(self.pending) >= self.max_pending:
            # A client this far behind is closed, as the real server does; it re-watches.
            self.overflowed = True
            self.close()
            return
        self.pending.append(line)
        if self.sink is None:
            self.wakeup.set()
        elif not self._flush_due and self._loop is not None:
            # Events of one loop pass go out together, in one chunk, once the pass is done.
            self._flush_due = True
            self._loop.call_soon(self._flush)

    def attach(self, sink: Sink) -> None:
        """Write events straight to the client from now on instead of waking the watch's
        task for each one.

        That task wakes per event otherwise (a wait, its timeout armed and cancelled, a
        write, a drain check), for every watch the event reaches; with a sink it wakes only
        for its timeout, a bookmark, the end, or a client that stopped reading (the sink
        refuses, the task waits for the client to drain and writes what piled up). Bytes go
        out in order either way: whoever writes sends everything pending at once.
        """
        self._loop = asyncio.get_running_loop()
        self.sink = sink

    def detach(self) -> None:
        """Stop writing: the stream is ending and nothing may follow its last chunk."""
        self.sink = None

    def _flush(self) -> None:
        self._flush_due = False
        sink = self.sink
        # A closed watch's task writes what is left before its stream ends.
        if sink is None or self.closed or not self.pending:
            return
        try:
            sent = sink(b"".join(self.pending))
        except ConnectionResetError:
            self.close()
            return
        if sent:
            # A refusal's wake-up is spent too: a task woken with nothing to write would
            # find the event still set and spin.
            self.pending.clear()
            self.wakeup.clear()
        else:
            self.wakeup.set()

    def push_object(self, event_type: str, obj: dict[str, Any]) -> None:
        self.push(self._render(event_type, obj))

    def close(self) -> None:
        self.closed = True
        self.wakeup.set()

    def bookmark_due(self, now: float, deadline: float) -> bool:
        """Whether a bookmark may be written now that the wait for events ran out.

        The wait can run out after an event woke the watch but before the watch ran: a
        bookmark carries the server's newest resourceVersion, so sent ahead of that event it
        would tell the client it had seen a version it never got, and a client resuming
        from it would miss the event for good. A silenced or closed watch, or one past its
        deadline, sends nothing.
        """
        return not self.pending and not self.silent and not self.closed and now < deadline

    def drain(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        self.wakeup.clear()
        return data


@dataclass
class History:
    events: deque[WatchEvent] = field(default_factory=deque)
    # Every event with rv > floor is still in `events`; older ones may be gone.
    floor: int = 0
    watchers: set[Watcher] = field(default_factory=set)


class WatchHub:
    """Histories and watchers per stored resource (keyed like the store)."""

    def __init__(self, max_history: int = 10_000) -> None:
        self.max_history = max_history
        self._histories: dict[tuple[str, str], History] = {}
        # Reads waiting for the server to reach a resourceVersion, by that version.
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        # Floor of histories not created yet: after a restart from a snapshot nothing
        # before the restored resourceVersion can be replayed.
        self._base_floor = 0

    def _history(self, key: tuple[str, str]) -> History:
        h = self._histories.get(key)
        if h is None:
            h = self._histories[key] = History(floor=self._base_floor)
        return h

    def publish(self, key: tuple[str, str], event: WatchEvent) -> None:
        h = self._history(key)
        h.events.append(event)
        while len(h.events) > self.max_history:
            h.floor = h.events.popleft().rv
        for w in list(h.watchers):
            w.offer(event)
        if self._waiting:
            self._wake(event.rv)

    def _wake(self, rv: int) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for wanted, future in self._waiting:
            if wanted <= rv:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((wanted, future))
        self._waiting = still

    @property
    def waiting_reads(self) -> int:
        """Reads parked by `wait_for` right now (for tests and diagnostics)."""
        return len(self._waiting)

    async def wait_for(self, rv: int, within: float) -> bool:
        """Wait until an event at `rv` or later is published; False after `within` seconds.

        Every write publishes an event, so this is how a read from a resourceVersion the
        server has not reached yet (a client that heard of it from another replica, or a
        restarted server) waits for it, as the real server's watch cache does.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((rv, future))
        try:
            async with asyncio.timeout(within):
                await future
        except TimeoutError:
            return False
        finally:
            self._waiting = [(r, f) for r, f in self._waiting if f is not future]
        return True

    def floor(self, key: tuple[str, str]) -> int:
        return self._history(key).floor

    def since(self, key: tuple[str, str], rv: int, current: int) -> list[WatchEvent]:
        """Events after `rv`, or `410 Expired` when history no longer reaches back to it."""
        h = self._history(key)
        if rv < h.floor:
            raise expired(f"too old resource version: {rv} ({h.floor})")
        if rv >= current:
            return []
        out: list[WatchEvent] = []
        for ev in reversed(h.events):
            if ev.rv <= rv:
                break
            out.append(ev)
        out.reverse()
        return out

    def subscribe(self, key: tuple[str, str], watcher: Watcher) -> None:
        self._history(key).watchers.add(watcher)

    def unsubscribe(self, key: tuple[str, str], watcher: Watcher) -> None:
        self._history(key).watchers.discard(watcher)

    def compact(self, keys: Iterable[tuple[str, str]] | None, current: int) -> None:
        """Forget history up to `current`: any older resourceVersion now yields 410."""
        if keys is None:
            self._base_floor = current
        for key in list(keys) if keys is not None else list(self._histories):
            h = self._history(key)
            h.events.clear()
            h.floor = current

    def silence(self, keys: Iterable[tuple[str, str]] | None) -> int:
        """Make the open watches go quiet without closing them; returns how many."""
        count = 0
        for key in list(keys) if keys is not None else list(self._histories):
            for w in self._history(key).watchers:
                w.silent = True
                count += 1
        return count

    def close_all(self) -> None:
        for h in self._histories.values():
            for w in list(h.watchers):
                w.close()
            h.watchers.clear()

    def drop(self, key: tuple[str, str]) -> None:
        """A resource stopped being served (CRD deleted): end its watches."""
        h = self._histories.pop(key, None)
        if h is not None:
            for w in h.watchers:
                w.close()
