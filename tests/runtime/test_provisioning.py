"""Provisioning runs on every start of every replica: it must be idempotent and repair drift."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerInfo, DeliverPolicy, StorageType
from nats.js.errors import NotFoundError

from fixtures.key_history import key_history
from fixtures.nats_server import ANCHOR_STREAM
from gati_contracts.subjects import LEASES_BUCKET, METRICS_STREAM, ROUTES_BUCKET, STREAM
from gati_runtime.embedded_nats import NatsCluster
from gati_runtime.provisioning import (
    SUCCEEDED_INACTIVE,
    ConsumerSpec,
    ProvisioningError,
    consumer_drift,
    ensure_consumer,
    ensure_stream,
    provision_bus,
    stream_config,
    stream_drift,
)
from gati_runtime.settings import Settings

SETTINGS = Settings.load(environ={})
SPEC = ConsumerSpec(durable="reconciler", filter_subjects=("gati.cr.>", "gati.owned.>"))


def test_stream_drift_ignores_unit_round_trips_and_subject_order() -> None:
    desired = stream_config(SETTINGS.stream_limits, ["gati.cr.>", "gati.owned.>"])
    from_server = desired.evolve(
        subjects=["gati.owned.>", "gati.cr.>"],
        max_age=SETTINGS.stream_max_age.total_seconds() + 1e-9,
    )
    assert stream_drift(from_server, desired) == {}


def test_stream_drift_names_each_changed_field() -> None:
    desired = stream_config(SETTINGS.stream_limits, ["gati.cr.>"])
    drifted = desired.evolve(max_age=60.0, num_replicas=3)
    assert stream_drift(drifted, desired) == {
        "max_age": (60.0, desired.max_age),
        "num_replicas": (3, 1),
    }


def test_consumer_drift_treats_one_filter_in_either_field_alike() -> None:
    single = ConsumerSpec(durable="scaler", filter_subjects=("gati.metrics.>",)).config()
    as_list = single.evolve(filter_subject=None, filter_subjects=["gati.metrics.>"])
    assert consumer_drift(as_list, single) == {}


def test_a_durable_filtered_in_the_client_reads_the_whole_stream() -> None:
    whole = ConsumerSpec(
        durable="reconciler", filter_subjects=SPEC.filter_subjects, filter_on_server=False
    ).config()
    assert whole.filter_subject is None
    assert whole.filter_subjects is None
    # Either way round is drift, so provisioning moves a durable between the two in place.
    assert set(consumer_drift(SPEC.config(), whole)) == {"filters"}
    assert set(consumer_drift(whole, SPEC.config())) == {"filters"}
    assert consumer_drift(whole, whole) == {}


def test_consumer_spec_rejects_empty_filters() -> None:
    with pytest.raises(ValueError, match="filter_subjects"):
        ConsumerSpec(durable="x", filter_subjects=())


async def test_provisioning_twice_changes_nothing_the_second_time(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    first = await provision_bus(jsm, SETTINGS)
    assert [(c.name, c.action) for c in first] == [
        (STREAM, "created"),
        (METRICS_STREAM, "created"),
        (f"KV_{ROUTES_BUCKET}", "created"),
        (f"KV_{LEASES_BUCKET}", "created"),
    ]
    second = await provision_bus(jsm, SETTINGS)
    assert [c.action for c in second] == ["unchanged"] * 4
    leases = await jsm.stream_info(f"KV_{LEASES_BUCKET}")
    assert leases.config.allow_msg_ttl  # what lets a crashed holder's lease expire

    routes = await nats_client.jetstream().key_value(ROUTES_BUCKET)
    await routes.put("default.api", b"v1")
    await routes.put("default.api", b"v2")
    assert await key_history(jsm, ROUTES_BUCKET, "default.api") == [b"v1", b"v2"]


async def test_repairs_stream_limit_changed_out_of_band(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    info = await jsm.stream_info(STREAM)
    await jsm.update_stream(info.config.evolve(max_age=timedelta(hours=1).total_seconds()))

    changes = await provision_bus(jsm, SETTINGS)

    assert changes[0].action == "updated"
    assert set(changes[0].fields) == {"max_age"}
    repaired = await jsm.stream_info(STREAM)
    assert repaired.config.max_age == SETTINGS.stream_max_age.total_seconds()


async def test_refuses_to_change_storage_in_place(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    desired = stream_config(SETTINGS.stream_limits, ["gati.cr.>"])
    await jsm.add_stream(desired.evolve(storage=StorageType.MEMORY))
    with pytest.raises(ProvisioningError, match=r"storage.*cannot change this in place"):
        await ensure_stream(jsm, desired)


async def test_consumer_provisioning_repairs_drift(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    assert (await ensure_consumer(jsm, STREAM, SPEC)).action == "created"
    assert (await ensure_consumer(jsm, STREAM, SPEC)).action == "unchanged"

    info = await jsm.consumer_info(STREAM, SPEC.durable)
    await jsm.add_consumer(STREAM, config=info.config.evolve(max_deliver=2, ack_wait=5.0))
    change = await ensure_consumer(jsm, STREAM, SPEC)

    assert change.action == "updated"
    assert set(change.fields) == {"max_deliver", "ack_wait"}
    repaired = await jsm.consumer_info(STREAM, SPEC.durable)
    assert repaired.config.max_deliver == SPEC.max_deliver
    assert repaired.config.ack_wait == SPEC.ack_wait.total_seconds()


async def test_consumer_filter_change_is_applied_in_place(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    await ensure_consumer(jsm, STREAM, SPEC)
    narrower = ConsumerSpec(durable=SPEC.durable, filter_subjects=("gati.cr.>",))
    change = await ensure_consumer(jsm, STREAM, narrower)
    assert set(change.fields) == {"filters"}
    info = await jsm.consumer_info(STREAM, SPEC.durable)
    assert (info.config.filter_subjects or [info.config.filter_subject]) == ["gati.cr.>"]


async def test_consumer_moves_to_client_filtering_and_back_in_place(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    await ensure_consumer(jsm, STREAM, SPEC)
    whole = ConsumerSpec(
        durable=SPEC.durable, filter_subjects=SPEC.filter_subjects, filter_on_server=False
    )

    assert set((await ensure_consumer(jsm, STREAM, whole)).fields) == {"filters"}
    info = await jsm.consumer_info(STREAM, SPEC.durable)
    assert (info.config.filter_subject, info.config.filter_subjects) == (None, None)
    assert (await ensure_consumer(jsm, STREAM, whole)).action == "unchanged"

    assert set((await ensure_consumer(jsm, STREAM, SPEC)).fields) == {"filters"}
    info = await jsm.consumer_info(STREAM, SPEC.durable)
    assert sorted(info.config.filter_subjects or []) == sorted(SPEC.filter_subjects)


SUCCESSOR = ConsumerSpec(
    durable="reconciler-stream",
    filter_subjects=SPEC.filter_subjects,
    filter_on_server=False,
    succeeds=SPEC.durable,
)


async def test_a_successor_starts_after_its_predecessors_acks_and_leaves_it_to_expire(
    nats_client: Client,
) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    await ensure_consumer(jsm, STREAM, SPEC)
    for n in range(3):
        await nats_client.jetstream().publish("gati.cr.gatihandler.default.api", str(n).encode())
    pull = await nats_client.jetstream().pull_subscribe_bind(durable=SPEC.durable, stream=STREAM)
    for message in await pull.fetch(2, timeout=5):
        await message.ack_sync()

    assert (await ensure_consumer(jsm, STREAM, SUCCESSOR)).action == "created"
    info = await jsm.consumer_info(STREAM, SUCCESSOR.durable)
    assert DeliverPolicy(info.config.deliver_policy) is DeliverPolicy.BY_START_SEQUENCE
    assert info.config.opt_start_seq == 3  # what the predecessor had not acked comes again
    assert info.num_pending == 1
    old = await jsm.consumer_info(STREAM, SPEC.durable)
    assert old.config.inactive_threshold == SUCCEEDED_INACTIVE.total_seconds()
    # Its start is no drift: every later start of a replica finds it as it is.
    assert (await ensure_consumer(jsm, STREAM, SUCCESSOR)).action == "unchanged"


async def test_a_successor_with_no_predecessor_starts_as_its_spec_says(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    assert (await ensure_consumer(jsm, STREAM, SUCCESSOR)).action == "created"
    info = await jsm.consumer_info(STREAM, SUCCESSOR.durable)
    assert DeliverPolicy(info.config.deliver_policy) is DeliverPolicy.ALL


async def test_replicas_racing_to_create_a_successor_keep_the_first(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    await ensure_consumer(jsm, STREAM, SPEC)
    await nats_client.jetstream().publish("gati.cr.gatihandler.default.api", b"0")
    await ensure_consumer(jsm, STREAM, SUCCESSOR)  # the other replica, a moment earlier
    first = (await jsm.consumer_info(STREAM, SUCCESSOR.durable)).config.opt_start_seq
    real_info = jsm.consumer_info
    reads = 0

    async def read_before_the_other_created_it(stream: str, durable: str) -> ConsumerInfo:
        nonlocal reads
        if durable == SUCCESSOR.durable and reads == 0:
            reads += 1
            raise NotFoundError
        return await real_info(stream, durable)

    # This replica read before the other's create, and the ack floor after a new ack.
    await nats_client.jetstream().publish("gati.cr.gatihandler.default.api", b"1")
    pull = await nats_client.jetstream().pull_subscribe_bind(durable=SPEC.durable, stream=STREAM)
    for message in await pull.fetch(2, timeout=5):
        await message.ack_sync()
    jsm.consumer_info = read_before_the_other_created_it  # type: ignore[method-assign]

    assert (await ensure_consumer(jsm, STREAM, SUCCESSOR)).action == "unchanged"
    assert (await real_info(STREAM, SUCCESSOR.durable)).config.opt_start_seq == first


async def test_consumer_start_position_change_is_refused(nats_client: Client) -> None:
    jsm = nats_client.jsm()
    await provision_bus(jsm, SETTINGS)
    await ensure_consumer(jsm, STREAM, SPEC)
    moved = ConsumerSpec(
        durable=SPEC.durable, filter_subjects=SPEC.filter_subjects, deliver_policy=DeliverPolicy.NEW
    )
    with pytest.raises(ProvisioningError, match="nats consumer rm"):
        await ensure_consumer(jsm, STREAM, moved)


async def test_gati_bus_fixture_provides_the_streams(gati_bus: Client) -> None:
    names = {info.config.name for info in await gati_bus.jsm().streams_info()}
    assert names == {
        ANCHOR_STREAM,
        STREAM,
        METRICS_STREAM,
        f"KV_{ROUTES_BUCKET}",
        f"KV_{LEASES_BUCKET}",
    }


async def test_provisioning_waits_out_a_cluster_without_quorum(tmp_path: Path) -> None:
    """Replicas start with their JetStream cluster: a lone node has no meta leader and cannot
    create a replicated stream yet, which must hold provisioning up, not end the service."""
    settings = Settings.load(environ={"GATI_STREAM_REPLICAS": "3", "GATI_METRICS_REPLICAS": "3"})
    with NatsCluster(tmp_path) as cluster:  # started, then brought down to one node
        for node in cluster.nodes[1:]:
            node.stop()
        client = await nats.connect(cluster.nodes[0].url, name="lone-node")
        try:
            provisioning = asyncio.create_task(provision_bus(client.jsm(timeout=1.0), settings))
            await asyncio.sleep(2.0)  # the outage, during which every attempt fails
            assert not provisioning.done(), "a lone node answered a create for three replicas"
            for node in cluster.nodes[1:]:
                node.start(wait=False)
            changes = await asyncio.wait_for(provisioning, timeout=60)
        finally:
            await client.close()
    assert {change.name for change in changes} >= {STREAM, METRICS_STREAM}
