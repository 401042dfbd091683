"""Kube against a real kubesim: the verbs, how failures are sorted, credentials, threads."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
from kubernetes import client

from fixtures.kubesim_server import api_client
from gati_kubesim.server import ThreadedKubeSim
from gati_runtime.kube_api import Kube, KubeError, collection_path


def config_map(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


async def test_each_verb_round_trips_and_failures_say_whether_to_retry(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    kube = Kube(kube_api, workers=2)
    try:
        maps = collection_path("v1", "configmaps", kube_namespace)
        created = await kube.create(maps, config_map(kube_namespace, "a", k="ü"))
        assert created["data"] == {"k": "ü"}  # UTF-8 both ways
        applied = await kube.apply(f"{maps}/b", config_map(kube_namespace, "b", k="v"))
        assert applied["metadata"]["managedFields"][0]["manager"]
        assert [item["metadata"]["name"] for item in await kube.list(maps, "")] == ["a", "b"]
        live = await kube.get(f"{maps}/a")
        assert live is not None
        await kube.replace(f"{maps}/a", {**live, "data": {"k": "new"}})
        with pytest.raises(KubeError) as stale:
            await kube.replace(f"{maps}/a", {**live, "data": {"k": "old"}})
        assert (stale.value.code, stale.value.transient) == (409, True)
        with pytest.raises(KubeError) as invalid:
            await kube.create(maps, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
        assert invalid.value.code in (400, 422)
        assert not invalid.value.transient
        assert invalid.value.message  # the server's Status message, not the raw body
        # A write made for its effect alone: the answer is not decoded, the write happened.
        await kube.create(maps, config_map(kube_namespace, "c"), answer=False)
        assert (
            await kube.apply(f"{maps}/c", config_map(kube_namespace, "c", k="v"), answer=False)
            is None
        )
        written = await kube.get(f"{maps}/c")
        assert written is not None
        assert written["data"] == {"k": "v"}
        await kube.delete(f"{maps}/a")
        assert await kube.get(f"{maps}/a") is None
        await kube.delete(f"{maps}/a")  # already gone: not an error
    finally:
        kube.close()


async def test_replace_version_answers_the_new_resource_version(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    """A writer that keeps what it wrote needs only the version its write made."""
    kube = Kube(kube_api, workers=1)
    try:
        maps = collection_path("v1", "configmaps", kube_namespace)
        live = await kube.create(maps, config_map(kube_namespace, "a", k="1"))
        version = await kube.replace_version(f"{maps}/a", {**live, "data": {"k": "2"}})
        read = await kube.get(f"{maps}/a")
        assert read is not None
        assert read["metadata"]["resourceVersion"] == version != live["metadata"]["resourceVersion"]
        assert read["data"] == {"k": "2"}
        with pytest.raises(KubeError) as stale:  # the version is still a precondition
            await kube.replace_version(f"{maps}/a", {**live, "data": {"k": "3"}})
        assert stale.value.code == 409
    finally:
        kube.close()


async def test_the_clients_bearer_token_goes_with_every_call() -> None:
    with ThreadedKubeSim(token="s3cret") as sim:
        for token, expected in (("s3cret", None), ("wrong", 401)):
            with api_client(sim.url, token, sim.sim.ca_file) as api:
                kube = Kube(api)
                try:
                    await kube.list("/api/v1/namespaces", "")
                    code = None
                except KubeError as error:
                    code = error.code
                finally:
                    kube.close()
            assert code == expected


async def test_no_answer_is_a_transient_error_with_code_zero() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = False
    with client.ApiClient(configuration) as api:
        kube = Kube(api)
        try:
            with pytest.raises(KubeError) as refused:
                await kube.get("/api/v1/namespaces/default")
        finally:
            kube.close()
    assert (refused.value.code, refused.value.transient) == (0, True)


async def test_overlapping_calls_share_at_most_workers_threads(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    before = {thread.ident for thread in threading.enumerate()}
    kube = Kube(kube_api, workers=3)
    try:
        answers = await asyncio.gather(
            *(kube.get(f"/api/v1/namespaces/{kube_namespace}") for _ in range(40))
        )
        assert all(answer is not None for answer in answers)
        started = [thread for thread in threading.enumerate() if thread.ident not in before]
        assert 1 <= len([thread for thread in started if thread.name.startswith("kube")]) <= 3
    finally:
        kube.close()
    with pytest.raises(RuntimeError, match="closed"):
        await kube.get(f"/api/v1/namespaces/{kube_namespace}")
