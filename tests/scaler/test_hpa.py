"""The HorizontalPodAutoscaler of mode `hpa`: schema-valid, deterministic, and refusing a target
the HPA controller could never measure."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.samples import handler
from gati_contracts.handler import GatiHandler
from gati_scaler.decision import SCALE_UP_PERCENT, SCALE_UP_PODS
from gati_scaler.hpa import HpaError, render_hpa

UID = "0f4c7a56-1111-4c2e-9d7e-000000000001"
CPU = {"requests": {"cpu": "100m", "memory": "128Mi"}}


def gh(scaling: dict[str, Any], resources: dict[str, Any] | None = None) -> GatiHandler:
    raw = handler(scaling=scaling, resources=CPU if resources is None else resources)
    raw["metadata"]["uid"] = UID
    return GatiHandler.model_validate(raw)


def metrics(hpa: dict[str, Any]) -> dict[str, int]:
    return {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    }


def test_renders_a_valid_hpa_for_the_deployment() -> None:
    hpa = render_hpa(gh({"mode": "hpa", "minReplicas": 2, "maxReplicas": 7}), "users-v2")
    kubernetes_validate.validate(hpa, "1.32", strict=True)
    assert hpa["metadata"]["name"] == "users-v2"
    assert hpa["metadata"]["namespace"] == "shop"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "users-v2",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)
    owner = hpa["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("GatiHandler", UID, True)
    assert hpa["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gati-operator"


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [
        ({}, {"cpu": 80}),
        ({"targetCPUUtilization": 60}, {"cpu": 60}),
        ({"targetMemoryUtilization": 70}, {"memory": 70}),
        ({"targetCPUUtilization": 50, "targetMemoryUtilization": 90}, {"cpu": 50, "memory": 90}),
    ],
)
def test_utilization_targets(scaling: dict[str, Any], expected: dict[str, int]) -> None:
    hpa = render_hpa(gh({"mode": "hpa", **scaling}), "users-v2")
    kubernetes_validate.validate(hpa, "1.32", strict=True)
    assert metrics(hpa) == expected


def test_behavior_stabilizes_down_by_the_spec_and_limits_up_as_mode_events() -> None:
    hpa = render_hpa(gh({"mode": "hpa", "scaleDownStabilizationSeconds": 120}), "users-v2")
    behavior = hpa["spec"]["behavior"]
    assert behavior["scaleDown"] == {"stabilizationWindowSeconds": 120}
    policies = {p["type"]: p["value"] for p in behavior["scaleUp"]["policies"]}
    assert policies == {"Pods": SCALE_UP_PODS, "Percent": SCALE_UP_PERCENT}
    assert behavior["scaleUp"]["selectPolicy"] == "Max"


def test_min_zero_becomes_one_as_an_hpa_cannot_hold_zero() -> None:
    hpa = render_hpa(gh({"mode": "hpa", "minReplicas": 0}), "users-v2")
    assert hpa["spec"]["minReplicas"] == 1
    kubernetes_validate.validate(hpa, "1.32", strict=True)


def test_a_limit_stands_in_for_a_missing_request() -> None:
    limits_only = {"limits": {"cpu": "500m"}}
    hpa = render_hpa(gh({"mode": "hpa"}, limits_only), "users-v2")
    assert metrics(hpa) == {"cpu": 80}


@pytest.mark.parametrize(
    ("scaling", "resources", "field"),
    [
        ({"mode": "hpa"}, {}, "spec.resources.requests.cpu"),
        (
            {"mode": "hpa", "targetMemoryUtilization": 70},
            {"requests": {"cpu": "1"}},
            "spec.resources.requests.memory",
        ),
        ({"mode": "none"}, CPU, "spec.scaling.mode"),
        ({"mode": "events", "targetRequestsPerReplica": 5}, CPU, "spec.scaling.mode"),
    ],
)
def test_refuses_with_the_field_to_fix(
    scaling: dict[str, Any], resources: dict[str, Any], field: str
) -> None:
    with pytest.raises(HpaError) as caught:
        render_hpa(gh(scaling, resources), "users-v2")
    assert caught.value.problem.path == field
    assert field in str(caught.value)


def test_refuses_a_handler_not_read_from_the_server() -> None:
    raw = handler(scaling={"mode": "hpa"}, resources=CPU)
    with pytest.raises(HpaError, match=r"metadata\.uid"):
        render_hpa(GatiHandler.model_validate(raw), "users-v2")


def test_rendering_does_not_alias_the_handler() -> None:
    source = gh({"mode": "hpa"})
    before = copy.deepcopy(source.model_dump())
    hpa = render_hpa(source, "users-v2")
    hpa["metadata"]["labels"]["x"] = "y"
    assert source.model_dump() == before


@given(
    low=st.integers(0, 20),
    span=st.integers(0, 100),
    cpu=st.none() | st.integers(1, 1000),
    memory=st.none() | st.integers(1, 1000),
    stabilization=st.integers(0, 3600),
)
def test_any_valid_hpa_spec_renders_a_valid_deterministic_hpa(
    low: int, span: int, cpu: int | None, memory: int | None, stabilization: int
) -> None:
    scaling: dict[str, Any] = {
        "mode": "hpa",
        "minReplicas": low,
        "maxReplicas": max(1, low + span),
        "scaleDownStabilizationSeconds": stabilization,
    }
    if cpu is not None:
        scaling["targetCPUUtilization"] = cpu
    if memory is not None:
        scaling["targetMemoryUtilization"] = memory
    resource = gh(scaling)
    hpa = render_hpa(resource, "users-v2")
    kubernetes_validate.validate(hpa, "1.32", strict=True)
    assert json.dumps(hpa) == json.dumps(render_hpa(gh(scaling), "users-v2"))
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert len(hpa["spec"]["metrics"]) == 1 + (cpu is not None and memory is not None)
