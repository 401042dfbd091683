"""Watch conventions through the official client: resume, bookmarks, 410 and relist."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from fixtures.kubesim_server import api_client, kubesim_hook
from gati_kubesim.server import KubeSim, ThreadedKubeSim
from gati_kubesim.watch import encoded_object


def _events(stream: Any, count: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for ev in stream:
        out.append((ev["type"], ev["object"].metadata.name))
        if len(out) == count:
            break
    return out


def test_watch_resumes_from_a_resource_version_without_gaps(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    a = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "b"}})
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "c"}})
    core.patch_namespaced_config_map("a", kube_namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("b", kube_namespace)
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map,
        kube_namespace,
        resource_version=a.metadata.resource_version,
        timeout_seconds=60,
    )
    got = _events(stream, 4)
    w.stop()
    assert got == [("ADDED", "b"), ("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_watch_from_zero_lists_then_follows(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map, kube_namespace, resource_version="0", timeout_seconds=60
    )
    first = next(stream)
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "a")
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "b"}})
    second = next(stream)
    w.stop()
    assert (second["type"], second["object"].metadata.name) == ("ADDED", "b")


def test_bookmarks_arrive_when_asked_for(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    w = watch.Watch()
    for ev in w.stream(
        core.list_namespaced_config_map,
        kube_namespace,
        resource_version=made.metadata.resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    ):
        assert ev["type"] == "BOOKMARK"
        rv = ev["raw_object"]["metadata"]["resourceVersion"]
        assert int(rv) >= int(made.metadata.resource_version)
        break
    else:
        pytest.fail("no bookmark within the watch timeout")
    w.stop()


def test_compaction_yields_410_and_a_relist_recovers(kubesim_fresh: ThreadedKubeSim) -> None:
    with api_client(kubesim_fresh.url) as api:
        core = client.CoreV1Api(api)
        old = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
        assert int(kubesim_hook(kubesim_fresh.url, "compact")["compactedTo"]) > 0
        with pytest.raises(ApiException) as err:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=old.metadata.resource_version,
                timeout_seconds=2,
            ):
                pass
        assert err.value.status == 410
        assert "Expired" in str(err.value.reason)
        listing = core.list_namespaced_config_map("default")
        assert [i.metadata.name for i in listing.items] == ["a", "b"]
        w = watch.Watch()
        stream = w.stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=listing.metadata.resource_version,
            timeout_seconds=60,
        )
        core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
        ev = next(stream)
        w.stop()
        assert (ev["type"], ev["object"].metadata.name) == ("ADDED", "c")


def test_raw_410_is_an_error_event_with_expired_status(kubesim_fresh: ThreadedKubeSim) -> None:
    """What the real server sends: HTTP 200, then one ERROR event carrying a 410 Status."""
    with api_client(kubesim_fresh.url) as api:
        core = client.CoreV1Api(api)
        old = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
        kubesim_fresh.call(kubesim_fresh.sim.compact, "configmaps")
    url = (
        f"{kubesim_fresh.url}/api/v1/namespaces/default/configmaps?watch=1"
        f"&resourceVersion={old.metadata.resource_version}"
    )
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200
        event = json.loads(resp.readline())
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


def test_selector_watch_sees_objects_leave_and_enter(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "a", "labels": {"pick": "yes"}}}
    )
    w = watch.Watch()
    stream = w.stream(
        core.list_namespaced_config_map,
        kube_namespace,
        label_selector="pick=yes",
        resource_version=made.metadata.resource_version,
        timeout_seconds=60,
    )
    core.patch_namespaced_config_map("a", kube_namespace, {"metadata": {"labels": {"pick": "no"}}})
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "other"}})
    core.patch_namespaced_config_map("a", kube_namespace, {"metadata": {"labels": {"pick": "yes"}}})
    got = _events(stream, 2)
    w.stop()
    assert got == [("DELETED", "a"), ("ADDED", "a")]


def test_send_initial_events_ends_with_a_marked_bookmark(
    kubesim_server: ThreadedKubeSim, kube_namespace: str, kube_api: client.ApiClient
) -> None:
    client.CoreV1Api(kube_api).create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "a"}}
    )
    url = (
        f"{kubesim_server.url}/api/v1/namespaces/{kube_namespace}/configmaps?watch=1"
        "&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
        "&timeoutSeconds=2"
    )
    with urllib.request.urlopen(url, timeout=5) as resp:
        first = json.loads(resp.readline())
        second = json.loads(resp.readline())
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "a")
    assert second["type"] == "BOOKMARK"
    assert second["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_silenced_watch_stays_open_and_delivers_nothing(kubesim_fresh: ThreadedKubeSim) -> None:
    with api_client(kubesim_fresh.url) as api:
        core = client.CoreV1Api(api)
        made = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        received: list[str] = []
        opened = threading.Event()

        def consume() -> None:
            w = watch.Watch()
            for ev in w.stream(
                core.list_namespaced_config_map,
                "default",
                resource_version=made.metadata.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=1,
            ):
                received.append(ev["type"])
                opened.set()

        t = threading.Thread(target=consume)
        t.start()
        core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
        assert opened.wait(5)
        silenced = kubesim_hook(kubesim_fresh.url, "silence-watches", {"resource": "configmaps"})
        assert silenced == {"silenced": 1}
        core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
        t.join(10)
        assert received == ["ADDED"]  # nothing after silence, not even bookmarks


def test_a_continue_token_older_than_compaction_is_410(kubesim_fresh: ThreadedKubeSim) -> None:
    with api_client(kubesim_fresh.url) as api:
        core = client.CoreV1Api(api)
        for name in ("a", "b", "c"):
            core.create_namespaced_config_map("default", {"metadata": {"name": name}})
        page = core.list_namespaced_config_map("default", limit=1)
        core.create_namespaced_config_map("default", {"metadata": {"name": "d"}})
        kubesim_hook(kubesim_fresh.url, "compact", {"resource": "configmaps"})
        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map("default", limit=1, _continue=page.metadata._continue)
        assert err.value.status == 410
        assert json.loads(err.value.body)["reason"] == "Expired"


@pytest.mark.parametrize("query", ["watch=1&resourceVersion=abc", "limit=-1", "continue=%%%"])
def test_malformed_list_and_watch_parameters_are_400(
    kubesim_server: ThreadedKubeSim, query: str
) -> None:
    url = f"{kubesim_server.url}/api/v1/namespaces/default/configmaps?{query}"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 400
    assert json.loads(err.value.read())["reason"] == "BadRequest"


def test_stopping_the_server_ends_open_watches() -> None:
    sim = ThreadedKubeSim()
    sim.start()
    ended = threading.Event()

    def follow() -> None:
        url = f"{sim.url}/api/v1/namespaces/default/configmaps?watch=1"
        with urllib.request.urlopen(url, timeout=10) as resp:
            while resp.readline():
                pass
        ended.set()

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 5
    while not sim.sim.watchers and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    assert ended.wait(5)
    assert time.monotonic() - started < 5
    reader.join(5)


async def test_a_writes_answer_is_the_object_its_watch_event_carries(
    kubesim_async: KubeSim,
) -> None:
    # The answer reuses the event's encoding: byte for byte the same object, create and update.
    cms = "/api/v1/namespaces/default/configmaps"
    watch_params = {"watch": "1", "resourceVersion": "0"}
    async with (
        aiohttp.ClientSession(base_url=kubesim_async.url) as session,
        session.get(cms, params=watch_params) as stream,
    ):
        async with session.post(cms, json={"metadata": {"name": "same"}}) as resp:
            created = await resp.read()
        body = {"metadata": {"name": "same"}, "data": {"k": 'é"\n'}}
        async with session.put(f"{cms}/same", json=body) as resp:
            updated = await resp.read()
        lines = [await stream.content.readline() for _ in range(2)]
    assert lines == [
        b'{"type":"ADDED","object":' + created + b"}\n",
        b'{"type":"MODIFIED","object":' + updated + b"}\n",
    ]
    assert json.loads(updated)["data"] == {"k": 'é"\n'}
    # An object no event encoded is encoded afresh.
    assert encoded_object({"kind": "ConfigMap"}) is None
