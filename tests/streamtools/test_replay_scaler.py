"""The scaler replay without a server: decisions on samples and on ticks between events, the
replicas its own writes leave behind, and mode hpa's HPA per generation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gati_contracts.events import ChangeType
from gati_scaler.options import ScalerOptions
from gati_streamtools.replay import Decision
from gati_streamtools.replay_scaler import ScalerReplay
from streamtools.recorded import NOW
from streamtools.test_replay_timescape import Feed, deployment, handler

EVENTS = {
    "mode": "events",
    "targetRequestsPerReplica": 10,
    "minReplicas": 1,
    "maxReplicas": 10,
    "scaleToZero": True,
    "idleSeconds": 4,
    "scaleDownStabilizationSeconds": 1,
}
OPTIONS = ScalerOptions(tick_seconds=1, lease_seconds=3, resync_seconds=1, window_seconds=2)


def scaling(mode: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    obj = handler("orders", "v1")
    obj["metadata"]["generation"] = generation
    obj["spec"]["scaling"] = mode
    obj["spec"]["resources"] = {"requests": {"cpu": "100m"}}
    return obj


def writes(decisions: list[Decision]) -> list[tuple[int, str]]:
    return [
        (d.details["desiredReplicas"], d.details["reason"])
        for d in decisions
        if d.action == "scaled"
    ]


def test_samples_scale_up_and_idle_ticks_scale_to_zero_between_events() -> None:
    feed = Feed(ScalerReplay(OPTIONS))
    assert feed.change(scaling(EVENTS), 0) == []  # no Deployment yet: nothing to scale
    [first] = feed.change(deployment("orders", ready=1), 0.5)
    assert (first.action, first.details["reason"]) == ("scale-decided", "NoFreshSamples")
    # 40 requests over 10 s at 10 per replica: 4 replicas (within the +4 pods policy).
    assert writes(feed.sample("v1", requests=400, at=1)) == [(4, "ScaledUp")]
    assert writes(feed.sample("v1", requests=400, at=2)) == []
    feed.sample("v1", requests=0, at=3)
    idle = feed.sample("v1", requests=0, at=5)
    assert (0, "IdleScaledToZero") not in writes(idle), "idle 3 s of idleSeconds 4"
    # The next record is another version's sample at 8 s: a tick in between sees the fresh
    # idle samples outlast idleSeconds (4 s after the last busy one, at 2 s) and scales to zero.
    later = feed.sample("v9", requests=0, at=8)
    to_zero = [d for d in later if d.action == "scaled"]
    assert [(d.details["desiredReplicas"], d.details["reason"], d.at) for d in to_zero] == [
        (0, "IdleScaledToZero", NOW + timedelta(seconds=6))
    ]
    woken = feed.sample("v1", requests=100, at=9)
    assert writes(woken) == [(1, "Activated")]
    assert woken[0].details["currentReplicas"] == 0, "the replay's own writes are the current"


def test_mode_hpa_applies_once_per_generation_and_is_deleted_when_the_mode_moves() -> None:
    feed = Feed(ScalerReplay(OPTIONS))
    hpa = {"mode": "hpa", "minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 70}
    feed.change(deployment("orders", ready=1), 0)
    [applied] = feed.change(scaling(hpa), 1)
    assert (applied.action, applied.details) == ("hpa-applied", {"hpa": "orders"})
    assert feed.change(scaling(hpa), 2, ChangeType.MODIFIED) == []
    assert [d.action for d in feed.change(scaling(hpa, 2), 3, ChangeType.MODIFIED)] == [
        "hpa-applied"
    ]
    moved = feed.change(scaling({"mode": "none"}, 3), 4, ChangeType.MODIFIED)
    assert [d.action for d in moved] == ["hpa-deleted"]


def test_an_hpa_the_spec_cannot_have_is_refused_once_naming_the_field() -> None:
    feed = Feed(ScalerReplay(OPTIONS))
    no_request = scaling({"mode": "hpa", "targetCPUUtilization": 70})
    del no_request["spec"]["resources"]
    feed.change(deployment("orders", ready=1), 0)
    [refused] = feed.change(no_request, 1)
    assert refused.action == "hpa"
    assert "resources" in refused.changes[0]
    assert feed.change(no_request, 2, ChangeType.MODIFIED) == []
