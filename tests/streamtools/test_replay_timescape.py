"""The timescape replay without a server: passes at each event's stream time, deadlines taken
between two events as the service's tick takes them, and objects it cannot read reported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gati_contracts.events import ChangeEvent, ChangeType, TrafficSample, encode_event
from gati_contracts.subjects import cr_subject, owned_subject, traffic_subject
from gati_streamtools.reader import StoredMessage
from gati_streamtools.records import Record, decode_record
from gati_streamtools.replay import Adapter, Decision
from gati_streamtools.replay_timescape import TimescapeReplay
from streamtools.recorded import NOW, stored_ns
from timescape.helpers import version_object

ROLLOUT = {
    "steps": [{"weight": 50, "pause": "10s"}, {"weight": 100}],
    "analysis": {"interval": "1s"},
}


def handler(name: str, version_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "resourceVersion": "1",
        },
        "spec": {
            "handlerPath": "/orders",
            "version": version_id,
            "image": f"acme/orders:{version_id}",
            "replicas": 1,
            "timescape": {"rollout": ROLLOUT},
        },
    }


def version(name: str, version_id: str, created: int, **spec: Any) -> dict[str, Any]:
    return version_object(name, NOW + timedelta(seconds=created), versionId=version_id, **spec)


def deployment(name: str, ready: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-d-{name}",
            "resourceVersion": "3",
            "labels": {"gati.dev/kind": "gatihandler", "gati.dev/owner": name},
            "ownerReferences": [
                {"kind": "GatiHandler", "name": name, "uid": f"uid-{name}", "controller": True}
            ],
        },
        "spec": {"replicas": 1},
        "status": {"readyReplicas": ready},
    }


class Feed:
    """Records fed to a replay one at a time, `at` seconds after NOW in stream time."""

    def __init__(self, replay: Adapter | None = None) -> None:
        self.replay = replay or TimescapeReplay()
        self.sequence = 0

    def change(
        self, obj: dict[str, Any], at: float, kind: ChangeType = ChangeType.ADDED
    ) -> list[Decision]:
        event = ChangeEvent.of(kind, obj, source="w0", observed_at=NOW)
        place = owned_subject if obj["kind"] == "Deployment" else cr_subject
        return self.feed(
            place(obj["kind"], "shop", obj["metadata"]["name"]), encode_event(event), at
        )

    def sample(self, version_id: str, requests: int, at: float) -> list[Decision]:
        sample = TrafficSample(
            namespace="shop",
            handler="/orders",
            version=version_id,
            window_seconds=10,
            requests=requests,
            errors=0,
            observed_at=NOW + timedelta(seconds=at),
        )
        subject = traffic_subject("shop", "/orders", version_id)
        return self.feed(subject, encode_event(sample), at)

    def feed(self, subject: str, data: bytes, at: float) -> list[Decision]:
        self.sequence += 1
        time = NOW + timedelta(seconds=at)
        record: Record = decode_record(
            StoredMessage("GATI", self.sequence, subject, stored_ns(time), {}, data)
        )
        return self.replay.decide(record)


def summary(decisions: list[Decision]) -> list[tuple[str, str, str]]:
    return [(d.target, d.action, d.changes[0] if d.changes else "") for d in decisions]


def test_a_rollout_replays_step_by_step_with_deadlines_between_events() -> None:
    feed = Feed()
    assert summary(feed.change(handler("v1", "v1"), 0)) == [
        ("GatiVersion shop/v1", "create", "versionId v1 for the handler of the same name")
    ]
    feed.change(deployment("v1", ready=1), 1)
    first = feed.change(version("v1", "v1", created=2), 2)
    assert summary(first) == [
        (
            "GatiVersion shop/v1",
            "activated",
            "Succeeded FirstVersion: serving 100 %; no active version to share with",
        ),
        ("routes shop /orders", "routes", "default v1: v1 100 %"),
    ]
    feed.change(handler("v2", "v2"), 3)
    feed.change(deployment("v2", ready=1), 3)
    step = feed.change(version("v2", "v2", created=3), 3)
    assert [d.action for d in step] == ["rollout-step", "routes"]
    assert step[1].changes == ["default v1: v1 50 %, v2 50 %"]

    # Nothing is recorded until 20 s: the pause's deadline (3 s + 10 s) is taken at 13 s.
    later = feed.sample("v1", requests=5, at=20)
    activated = next(d for d in later if d.action == "activated")
    assert activated.at == NOW + timedelta(seconds=13)
    assert ("GatiVersion shop/v1", "draining") in [(d.target, d.action) for d in later]
    assert [d.changes for d in later if d.action == "routes"] == [["default v2: v2 100 %"]]
    # A busy sample of a draining version changes nothing anyone would see.
    assert {d.at for d in later} == {NOW + timedelta(seconds=13)}


def test_an_idle_draining_version_is_decommissioned_at_its_grace_deadline() -> None:
    feed = Feed()
    quick = {"decommission": {"graceSeconds": 5, "idleSamples": 1}}
    for name, at in (("v1", 0), ("v2", 1)):
        feed.change(handler(name, name), at)
        feed.change(deployment(name, ready=1), at)
        feed.change(version(name, name, created=at, **quick), at)
    finished = feed.sample("v2", requests=1, at=14)
    assert any(d.action == "draining" for d in finished)
    idle = feed.sample("v1", requests=0, at=15)
    assert [d.action for d in idle] == []
    assert feed.replay.finish() == []
    gone = feed.sample("v2", requests=1, at=30)
    [decommissioned] = [d for d in gone if d.action == "decommissioned"]
    # v2's pause ended at 1 s + 10 s, when v1 began draining: its 5 s grace ends at 16 s.
    assert decommissioned.at == NOW + timedelta(seconds=16)
    assert decommissioned.details["action"] == "delete"


def test_an_unreadable_version_is_reported_by_field_and_the_rest_replays() -> None:
    feed = Feed()
    broken = version("v1", "v1", created=0)
    broken["spec"]["routingWeight"] = 300
    [skipped] = feed.change(broken, 0)
    assert skipped.action == "skipped"
    assert "routingWeight" in skipped.changes[0]
    feed.change(handler("v1", "v1"), 1)
    feed.change(deployment("v1", ready=1), 1)
    fixed = feed.change(version("v1", "v1", created=0), 2)
    assert [d.action for d in fixed] == ["activated", "routes"]
