"""Garbage on the bus is terminated, counted and logged, and never blocks the event behind it.

The reconciler runs as deployed (its own NATS user, TLS, `gati-operator run`); the bad messages
come from the watcher's user, the only one allowed to publish on `gati.cr.>`, as a buggy or
compromised watcher would send them. They all travel on the subject of one live handler, ahead
of a good event for it: the consumer handles one subject in stream order, so the handler
reaching `Running` proves that none of them held the lane.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from nats.aio.client import Client
from prometheus_client.parser import text_string_to_metric_families

from fixtures.kubesim_server import api_client
from fixtures.service_processes import running_service
from gati_contracts.events import (
    ChangeEvent,
    ChangeType,
    OutcomeEvent,
    OutcomeResult,
    decode_event,
    encode_event,
    event_headers,
)
from gati_contracts.kinds import GROUP, VERSION
from gati_contracts.subjects import STATUS_ROOT, STREAM, cr_subject
from gati_kubesim.server import ThreadedKubeSim
from gati_reconciler.service import DURABLE
from gati_runtime.embedded_nats import LOOPBACK, free_port
from gati_runtime.provisioning import provision_bus
from gati_runtime.settings import Settings
from reconciler.harness import handler
from security.secure_stack import TOKEN, SecureNats, await_outcome

PLANTED = "planted-in-a-bad-message-3a9d"
NAME = "target"
PROCESSED = ("Progressing", "Running")
OVERSIZED = 1536 * 1024
"""Above the 1 MiB an event may have, below the 8 MB the deployed server lets through."""


def _bad_messages(good: ChangeEvent) -> dict[str, bytes]:
    payload = encode_event(good)
    document = json.loads(payload)
    padded = json.loads(payload)
    padded["object"]["metadata"]["annotations"] = {"pad": "x" * OVERSIZED}
    return {
        "empty": b"",
        "garbage": b"\xff\xfe\x00 not json " + PLANTED.encode(),
        "truncated": payload[: len(payload) // 2],
        "oversized": json.dumps(padded).encode(),
        "future schema version": json.dumps(document | {"schemaVersion": 2}).encode(),
        "other schema": json.dumps(document | {"schema": "gati.outcome"}).encode(),
        "deeply nested": b'{"schema":"gati.change","schemaVersion":1,"object":'
        + b"[" * 200_000
        + b"]" * 200_000
        + b"}",
        "wrong field types": json.dumps(document | {"name": 7, "generation": "x"}).encode(),
    }


def _terminated(metrics_port: int) -> float:
    url = f"http://{LOOPBACK}:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "gati_consumer_terminated_total"
                and sample.labels.get("consumer") == DURABLE
            ):
                return sample.value
    return 0.0


async def test_bad_messages_are_terminated_counted_logged_and_do_not_block(
    bus: SecureNats, kube: ThreadedKubeSim, tmp_path: Path
) -> None:
    api = api_client(kube.url, TOKEN, kube.sim.ca_file)
    obj = handler("default", NAME, replicas=1, env={"TOKEN": PLANTED})
    created = cast(
        dict[str, Any],
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, "default", "gatihandlers", obj
        ),
    )
    good = ChangeEvent.of(
        ChangeType.ADDED, created, source="security-test", observed_at=datetime.now(UTC)
    )
    bad = _bad_messages(good)
    subject = cr_subject("GatiHandler", "default", NAME)
    kubeconfig = kube.sim.write_kubeconfig(tmp_path / "kubeconfig")
    metrics_port = free_port()

    watcher = await bus.connect("watcher")
    tooling = await bus.connect("tooling")
    try:
        await provision_bus(watcher.jsm(), Settings.load(environ={}))
        js = watcher.jetstream()
        first = None
        for data in bad.values():
            ack = await js.publish(subject, data, headers={"Nats-Msg-Id": uuid.uuid4().hex})
            first = first or ack.seq
        stored = await js.publish(subject, encode_event(good), headers=event_headers(good))
        env = {
            "GATI_NATS_URL": bus.url("reconciler"),
            "GATI_NATS_TLS_CA": str(bus.cert.cert_file),
            "KUBECONFIG": str(kubeconfig),
            "GATI_HTTP_PORT": str(metrics_port),
        }
        with running_service("reconciler", tmp_path, env) as reconciler:
            # Without a watcher no Deployment change comes back, so Progressing is as far as
            # the handler gets; that the good event was reconciled at all is the point.
            outcome = await await_outcome(tooling, NAME, [reconciler], PROCESSED)
            assert outcome.input_sequence == stored.seq
            terminated = _terminated(metrics_port)
            abandoned = await _abandoned(tooling, first or 0, stored.seq)
        assert reconciler.exit_code == 0, reconciler.log()
    finally:
        await tooling.close()
        await watcher.close()

    assert terminated == len(bad)
    assert len(abandoned) == len(bad)
    assert all(o.result is OutcomeResult.FAILED and o.reason == "Abandoned" for o in abandoned)
    lines = [json.loads(line) for line in reconciler.log().splitlines() if line.startswith("{")]
    poisoned = [line for line in lines if line["event"] == "message_poisoned"]
    assert len(poisoned) == len(bad), poisoned
    assert all(line["object_key"] == subject and line["reason"] for line in poisoned)
    reasons = " ".join(line["reason"] for line in poisoned)
    for expected in ("exceeds", "version 2 is not supported", "expected schema", "not an event"):
        assert expected in reasons, reasons
    assert PLANTED not in reconciler.log()
    live = client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, "default", "gatihandlers", NAME
    )
    assert cast(dict[str, Any], live)["status"]["phase"] in PROCESSED


async def _abandoned(reader: Client, first: int, last: int) -> list[OutcomeEvent]:
    """The reconciler's outcomes about the bad messages (input sequences first..last-1): each
    is published before its message is terminated, so all are stored by the time the good
    event's outcome is."""
    jsm = reader.jsm()
    found: dict[int, OutcomeEvent] = {}
    for sequence in range(last + 1, (await jsm.stream_info(STREAM)).state.last_seq + 1):
        message = await jsm.get_msg(STREAM, sequence)
        if not (message.subject or "").startswith(STATUS_ROOT + "."):
            continue
        event = decode_event(message.data or b"", OutcomeEvent)
        if event.input_sequence is not None and first <= event.input_sequence < last:
            found[event.input_sequence] = event
    return list(found.values())
