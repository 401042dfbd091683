"""Folding py-spy's raw stacks into what bounds a process: its top functions by self time and
its share of samples by area of the code.

py-spy's raw format is one line per distinct stack, `frame;frame;...;leaf count`, each frame
`function (file:line)`, root first. Self time goes to the leaf, since that is where the CPU was;
a C function (json's encoder, msgspec, a socket call) has no frame of its own without
`--native`, so its time is billed to the Python function that called it. Areas are read off the
leaf's file by the longest matching path prefix, so a specific module (`gati_runtime/logging.py`)
overrides its package (`gati_runtime/`) whatever order the table lists them in. Paths are
py-spy's short form (`asyncio/base_events.py`, `gati_runtime/pull.py`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

AREAS: Mapping[str, tuple[str, ...]] = {
    "kube HTTP client": (
        "gati_runtime/kube_transport.py",
        "gati_runtime/http1.py",
        "gati_runtime/kube_api.py",
        "gati_runtime/kube_retry.py",
        "gati_runtime/kube_config.py",
        "kubernetes/",
        "urllib3/",
        "http/client.py",
        "email/",
    ),
    "nats-py": ("nats/",),
    "gati bus edge": (
        "gati_runtime/consumer.py",
        "gati_runtime/pull.py",
        "gati_runtime/publisher.py",
        "gati_runtime/lease.py",
        "gati_runtime/nats_connection.py",
        "gati_runtime/ack_subject.py",
        "gati_reconciler/stream_state.py",
        "gati_reconciler/reads.py",
        "gati_reconciler/lease_renewal.py",
        "gati_runtime/bus_copy.py",
        "gati_watcher/pipeline.py",
        "gati_watcher/envelope.py",
        "gati_watcher/handoff.py",
    ),
    "reconcile/render/diff": ("gati_reconciler/",),
    "watcher logic": ("gati_watcher/",),
    "gati runtime (other)": ("gati_runtime/",),
    "contracts": ("gati_contracts/",),
    "kubesim HTTP/routing": (
        "gati_kubesim/http.py",
        "gati_kubesim/httpserver.py",
        "gati_kubesim/httpwire.py",
        "gati_kubesim/api.py",
        "gati_kubesim/server.py",
        "gati_kubesim/discovery.py",
        "gati_kubesim/errors.py",
        "gati_kubesim/selectors.py",
        "gati_kubesim/tables.py",
        "gati_kubesim/faults.py",
    ),
    "kubesim SSA/merge": (
        "gati_kubesim/fieldmanager.py",
        "gati_kubesim/fieldpath.py",
        "gati_kubesim/patch.py",
        "gati_kubesim/mergeschema.py",
        "gati_kubesim/jsonvalue.py",
    ),
    "kubesim validation": (
        "gati_kubesim/admission.py",
        "gati_kubesim/openapi.py",
        "gati_kubesim/crds.py",
        "gati_kubesim/conversion.py",
        "gati_kubesim/jsonpath.py",
        "gati_kubesim/timestamps.py",
    ),
    "kubesim storage": (
        "gati_kubesim/store.py",
        "gati_kubesim/registry.py",
        "gati_kubesim/collector.py",
    ),
    "kubesim watch fan-out": ("gati_kubesim/watch.py",),
    "kubesim controllers": ("gati_kubesim/controllers.py",),
    "kubesim (other)": ("gati_kubesim/",),
    "kopf framework": ("kopf/",),
    "aiohttp/HTTP": ("aiohttp/", "multidict/", "yarl/", "http/"),
    "socket I/O": (
        "asyncio/streams.py",
        "asyncio/selector_events.py",
        "asyncio/sslproto.py",
        "socket.py",
        "ssl.py",
    ),
    "event loop": ("asyncio/", "selectors.py", "uvloop/"),
    "json/msgspec": ("json/", "msgspec/", "orjson/"),
    "pydantic": ("pydantic/", "pydantic_core/"),
    "logging": ("structlog/", "logging/", "gati_runtime/logging.py"),
    "metrics": (
        "prometheus_client/",
        "gati_kubesim/metrics.py",
        "gati_watcher/metrics.py",
    ),
    "threads": ("threading.py", "concurrent/", "queue.py"),
    "copy/deepcopy": ("copy.py",),
}
"""Area of a leaf frame by its file's path prefix (longest match wins); anything else is `other`."""

OTHER = "other"
GENERIC = frozenset({"socket I/O", "event loop", "json/msgspec", "threads", "copy/deepcopy", OTHER})
"""Areas that do work for whoever called them: a socket write is the kube client's or nats-py's
cost, so a sample in one of these is also billed to the innermost frame of a specific area."""
LOOP_DISPATCH = ("asyncio/runners.py", "asyncio/base_events.py", "asyncio/events.py")
"""Where the event loop calls a callback: work with only these below it is the loop's own (a
leaf in `Runner.run` is uvloop's C code: polling, transports, scheduling), not its caller's."""

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.function} ({self.file}:{self.line})" if self.file else self.function


NO_FRAME = Frame("(no frame read)", "", 0)


def parse_frame(text: str) -> Frame:
    """One frame; a frame py-spy could not place in a file keeps its text as the function."""
    match = _FRAME.match(text)
    if match is None:
        return Frame(text, "", 0)
    return Frame(match["function"], match["file"], int(match["line"] or 0))


def parse_raw(text: str) -> Counter[tuple[str, ...]]:
    """Samples per stack (frames root first) from py-spy's raw output."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        stack, sep, count = line.rpartition(" ")
        if not sep or not count.isdigit():
            raise ValueError(
                f"raw profile line {number}: expected 'frame;...;frame COUNT' as py-spy "
                f"--format raw writes it, got {line[:120]!r}"
            )
        # a stack --nonblocking read while it changed can come back with no frames at all
        stacks[tuple(stack.split(";")) if stack else ()] += int(count)
    return stacks


def _prefix_index(areas: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    index: dict[str, str] = {}
    for area, prefixes in areas.items():
        for prefix in prefixes:
            if prefix in index:
                raise ValueError(
                    f"path prefix {prefix!r} is in areas {index[prefix]!r} and {area!r}"
                )
            index[prefix] = area
    return sorted(index.items(), key=lambda item: -len(item[0]))


def area_of(file: str, index: Iterable[tuple[str, str]]) -> str:
    for prefix, area in index:
        if file.startswith(prefix):
            return area
    return OTHER


@dataclass(frozen=True)
class Profile:
    """One process's samples folded: self samples per function and per area, and per area on
    whose behalf the sample ran (`GENERIC` work billed to its innermost specific caller)."""

    samples: int
    functions: Counter[str]
    areas: Counter[str]
    callers: Counter[str]

    def top(self, count: int) -> list[tuple[str, float]]:
        """The `count` functions with most self time, with their share of all samples."""
        if not self.samples:
            return []
        return [(name, n / self.samples) for name, n in self.functions.most_common(count)]

    def shares(self) -> list[tuple[str, float, float]]:
        """Every area's share of the samples, by leaf and on whose behalf, largest first."""
        if not self.samples:
            return []
        ranked = sorted(
            self.areas.keys() | self.callers.keys(),
            key=lambda area: (-self.areas[area], -self.callers[area], area),
        )
        return [
            (area, self.areas[area] / self.samples, self.callers[area] / self.samples)
            for area in ranked
        ]


def fold(
    stacks: Mapping[tuple[str, ...], int], areas: Mapping[str, tuple[str, ...]] = AREAS
) -> Profile:
    index = _prefix_index(areas)
    functions: Counter[str] = Counter()
    by_area: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    for stack, count in stacks.items():
        leaf = parse_frame(stack[-1]) if stack else NO_FRAME
        functions[leaf.label] += count
        area = area_of(leaf.file, index)
        by_area[area] += count
        callers[_on_behalf_of(area, stack, index)] += count
    return Profile(sum(stacks.values()), functions, by_area, callers)


def _on_behalf_of(area: str, stack: tuple[str, ...], index: list[tuple[str, str]]) -> str:
    if area not in GENERIC:
        return area
    for text in reversed(stack):
        frame = parse_frame(text)
        if frame.file.startswith(LOOP_DISPATCH):
            break
        caller = area_of(frame.file, index)
        if caller not in GENERIC:
            return caller
    return area
