"""A change event whose copy holds a value the watcher masked (`GATI_REDACT_FIELDS`) is never
scaled on: the scaler reads that handler from the API server instead."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fixtures.stage import Stage
from gati_contracts.events import ChangeEvent, ChangeType
from gati_contracts.ownership import owned_name
from gati_runtime.consumer import Delivery
from gati_runtime.kube_api import Kube
from gati_runtime.lease import Leases
from gati_runtime.outcomes import DONE
from gati_runtime.publisher import Publisher
from gati_runtime.redaction import Redaction
from gati_scaler.scaler import LEASE_SCOPE, Scaler
from reconciler.harness import handler
from scaler.running import FAST, create_owned_deployment
from scaler.test_hpa_mode import HPA_SCALING, RESOURCES, hpa_of


@pytest.mark.parametrize("masked", ["spec.scaling.maxReplicas", "spec.scaling"])
async def test_a_masked_spec_is_read_from_the_api_server(stage: Stage, masked: str) -> None:
    gati_api, gati_connection, bus_settings, workloads = stage
    ns = workloads.namespace
    stored = workloads.create(handler(ns, "users", resources=RESOURCES, scaling=HPA_SCALING))
    create_owned_deployment(workloads, "users", stored, 1)
    copy = Redaction.parse(masked).apply(stored)
    assert copy.paths == (masked,)
    event = ChangeEvent.of(
        ChangeType.ADDED,
        copy.obj,
        source="w",
        observed_at=datetime.now(UTC),
        masked_fields=copy.paths,
    )
    kube = Kube(gati_api)
    try:
        scaler = Scaler(
            kube,
            gati_connection,
            Publisher(gati_connection),
            Leases(gati_connection.client, "s0", scope=LEASE_SCOPE),
            options=FAST,
            stream=bus_settings.stream,
            metrics_stream=bus_settings.metrics_stream,
            source="s0",
        )
        delivery = Delivery(event, f"gati.cr.{ns}.users", 1, 1, {})
        assert await scaler.on_change(delivery) == DONE
        assert scaler.tracked == {(ns, "users")}
        hpa = hpa_of(gati_api, ns, owned_name("users"))
        assert hpa is not None, "the HPA was not rendered from the stored spec"
        assert hpa["spec"]["maxReplicas"] == HPA_SCALING["maxReplicas"]
    finally:
        kube.close()
