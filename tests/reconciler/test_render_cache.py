"""The render cache reuses a render only while the object reads the same to a parse."""

from __future__ import annotations

from typing import Any

import pytest

from gati_reconciler.render_cache import RenderCache


def handler(uid: str = "u1", **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {
            "name": "h",
            "namespace": "ns",
            "uid": uid,
            "generation": 1,
            "resourceVersion": "10",
            "managedFields": [{"manager": "a", "time": "t1"}],
        },
        "spec": {"image": "img:1", "port": 8080},
    }
    obj.update(changes)
    return obj


class Renders:
    """A stand-in render that counts its calls and can be told to fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> list[dict[str, Any]]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return [{"kind": "Deployment", "n": self.calls}]


def test_a_status_write_reuses_the_render() -> None:
    cache, make = RenderCache(), Renders()
    first = cache.render(handler(), make)
    later = handler(status={"phase": "Running", "observedGeneration": 1})
    later["metadata"] |= {"resourceVersion": "11", "managedFields": [{"manager": "b"}]}
    assert cache.render(later, make) is first
    assert make.calls == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"spec": {"image": "img:2", "port": 8080}},
        {"unexpected": True},
    ],
    ids=["spec", "unknown-field"],
)
def test_anything_else_the_parse_reads_renders_again(changed: dict[str, Any]) -> None:
    cache, make = RenderCache(), Renders()
    cache.render(handler(), make)
    assert cache.render(handler(**changed), make) == [{"kind": "Deployment", "n": 2}]


def test_a_label_change_renders_again() -> None:
    cache, make = RenderCache(), Renders()
    cache.render(handler(), make)
    relabelled = handler()
    relabelled["metadata"]["labels"] = {"team": "x"}
    cache.render(relabelled, make)
    assert make.calls == 2


def test_a_failed_render_is_not_kept_so_it_fails_again() -> None:
    cache, make = RenderCache(), Renders()
    make.error = ValueError("spec.port: out of range")
    for _ in range(2):
        with pytest.raises(ValueError, match="out of range"):
            cache.render(handler(), make)
    assert make.calls == 2
    assert len(cache) == 0


def test_objects_are_told_apart_by_uid_and_the_least_recent_goes_first() -> None:
    cache, make = RenderCache(size=2), Renders()
    a = cache.render(handler("a"), make)
    cache.render(handler("b"), make)
    assert cache.render(handler("a"), make) is a  # a is now the most recent
    cache.render(handler("c"), make)  # evicts b
    assert len(cache) == 2
    cache.render(handler("b"), make)
    assert make.calls == 4
    assert cache.render(handler("c"), make)[0]["n"] == 3


def test_an_object_without_uid_is_rendered_each_time() -> None:
    cache, make = RenderCache(), Renders()
    for _ in range(2):
        cache.render(handler(""), make)
    assert make.calls == 2


def test_a_size_below_one_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="render cache size must be at least 1, got 0"):
        RenderCache(size=0)


def test_the_kept_render_names_its_generation_until_a_new_one_replaces_it() -> None:
    cache, make = RenderCache(), Renders()
    assert cache.kept("u1") is None
    first = cache.render(handler(), make)
    assert cache.kept("u1") == (1, first)
    newer = handler(spec={"image": "img:2", "port": 8080})
    newer["metadata"]["generation"] = 2
    second = cache.render(newer, make)
    assert cache.kept("u1") == (2, second)
