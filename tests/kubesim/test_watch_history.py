"""Watch history and fan-out without HTTP: resume, compaction floor, selector transitions."""

from __future__ import annotations

import json

import pytest

from gati_kubesim.errors import ApiError
from gati_kubesim.watch import Watcher, WatchEvent, WatchHub

KEY = ("", "configmaps")


def _obj(name: str, rv: int, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": str(rv),
            "labels": labels or {},
        }
    }


def test_since_returns_only_later_events_and_410_below_the_floor() -> None:
    hub = WatchHub(max_history=3)
    for rv in range(2, 7):
        hub.publish(KEY, WatchEvent("ADDED", rv, _obj(f"o{rv}", rv)))
    assert [e.rv for e in hub.since(KEY, 4, current=6)] == [5, 6]
    assert hub.floor(KEY) == 3
    with pytest.raises(ApiError) as err:
        hub.since(KEY, 2, current=6)
    assert (err.value.code, err.value.reason) == (410, "Expired")
    hub.compact(None, current=6)
    assert hub.since(KEY, 6, current=6) == []
    with pytest.raises(ApiError):
        hub.since(KEY, 5, current=6)


@pytest.mark.asyncio
async def test_events_are_encoded_once_and_shared() -> None:
    hub = WatchHub()
    a, b = Watcher(None, None), Watcher("ns", None)
    hub.subscribe(KEY, a)
    hub.subscribe(KEY, b)
    hub.publish(KEY, WatchEvent("ADDED", 2, _obj("x", 2)))
    assert a.pending[0] is b.pending[0]
    assert json.loads(a.drain())["type"] == "ADDED"


@pytest.mark.asyncio
async def test_selector_watchers_see_transitions() -> None:
    def match(obj: dict[str, object]) -> bool:
        return obj["metadata"]["labels"].get("pick") == "yes"  # type: ignore[index, union-attr, no-any-return]

    w = Watcher(None, match)
    old, new = _obj("x", 2, {"pick": "yes"}), _obj("x", 3, {"pick": "no"})
    w.offer(WatchEvent("MODIFIED", 3, new, old))
    w.offer(WatchEvent("MODIFIED", 4, _obj("x", 4, {"pick": "no"}), new))
    w.offer(WatchEvent("MODIFIED", 5, _obj("x", 5, {"pick": "yes"}), new))
    types = [json.loads(line)["type"] for line in w.pending]
    assert types == ["DELETED", "ADDED"]


@pytest.mark.asyncio
async def test_a_watcher_too_far_behind_is_closed() -> None:
    w = Watcher(None, None, max_pending=2)
    for rv in range(3):
        w.offer(WatchEvent("ADDED", rv, _obj("x", rv)))
    assert w.closed
    assert w.overflowed
