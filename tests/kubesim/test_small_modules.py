"""Pure helpers: JSONPath subset, ages, Accept parsing, faults, CRD checks, deployment status,
bounded caches."""

from __future__ import annotations

import random

import pytest

from gati_kubesim import bounded, crds, jsonpath, tables
from gati_kubesim.controllers import deployment_status, pods_fail, ready_delay
from gati_kubesim.faults import FaultRule, Faults
from kubesim.samples import deployment, handler_crd

OBJ = {
    "spec": {"replicas": 3},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]
    },
}


@pytest.mark.parametrize(
    ("path", "found"),
    [
        (".spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        (".status.conditions[1].type", ["Synced"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[*].type", ["Ready", "Synced"]),
        (".spec.missing", []),
    ],
)
def test_jsonpath_subset(path: str, found: list[object]) -> None:
    assert jsonpath.find(OBJ, path) == found


def test_jsonpath_rejects_what_it_does_not_support_and_writes_plain_paths() -> None:
    with pytest.raises(jsonpath.JsonPathError):
        jsonpath.validate(".spec..replicas")
    target: dict[str, object] = {}
    jsonpath.set_path(target, ".spec.replicas", 2)
    assert target == {"spec": {"replicas": 2}}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (20 * 3600, "20h"),
        (3 * 86400, "3d"),
        (-0.5, "0s"),
        (-5, "<invalid>"),
    ],
)
def test_human_durations_match_kubectl(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


@pytest.mark.parametrize(
    ("accept", "table"),
    [
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", True),
        ("application/json", False),
        ("application/json, application/json;as=Table;v=v1;g=meta.k8s.io", False),
        ("", False),
    ],
)
def test_table_is_served_only_when_preferred(accept: str, table: bool) -> None:
    assert tables.wants_table(accept) is table


def test_fault_rules_match_by_verb_resource_and_count() -> None:
    faults = Faults(rng=random.Random(1))
    faults.add(FaultRule(verb="list", resource="configmaps", code=500, times=1))
    assert faults.match("get", "configmaps") is None
    assert faults.match("list", "configmaps") is not None
    assert faults.match("list", "configmaps") is None
    with pytest.raises(ValueError, match="probability"):
        FaultRule(probability=1.5)
    with pytest.raises(ValueError, match="code"):
        FaultRule(code=200)


def test_crd_checks_name_every_broken_field() -> None:
    crd = handler_crd()
    assert crds.check(crd) == []
    crd["spec"]["scope"] = "Galaxy"
    crd["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = "color"
    fields = [c.field for c in crds.check(crd)]
    assert fields == ["spec.scope", "spec.versions[0].additionalPrinterColumns[0].type"]


def test_deployment_failure_signals() -> None:
    assert not pods_fail(deployment("a"))
    assert pods_fail(deployment("a", image="repo/x:1.0-failing"))
    assert pods_fail(deployment("a", image="reg:5000/x:1.0-failing@sha256:abc"))
    assert not pods_fail(deployment("a", image="reg:5000/x-failing"))
    assert pods_fail(deployment("a", **{"kubesim.gati.dev/fail": "true"}))
    assert ready_delay(deployment("a", **{"kubesim.gati.dev/ready-after": "2s"}), 9) == 2
    assert ready_delay(deployment("a", **{"kubesim.gati.dev/ready-after": "soon"}), 9) == 9


def test_deployment_status_shapes() -> None:
    d = deployment("a", replicas=4)
    d["metadata"]["generation"] = 2
    progressing = deployment_status(d, "progressing")
    assert progressing["observedGeneration"] == 2
    assert "readyReplicas" not in progressing
    assert progressing["unavailableReplicas"] == 4
    d["status"] = deployment_status(d, "ready")
    assert d["status"]["availableReplicas"] == 4
    assert "unavailableReplicas" not in d["status"]
    failed = deployment_status(d, "failed")
    reasons = {c["type"]: c["reason"] for c in failed["conditions"]}
    assert reasons == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "ProgressDeadlineExceeded",
    }


def test_a_bounded_cache_keeps_its_newer_half_once_over_its_limit() -> None:
    cache: dict[int, str] = {}
    for i in range(10):
        cache[i] = str(i)
        bounded.trim(cache, 8)
        assert len(cache) <= 8
    # 9 entries went over at i=8: 4 oldest dropped; then 9 was added
    assert list(cache) == [4, 5, 6, 7, 8, 9]
    assert cache[9] == "9"
    bounded.trim(cache, 8)
    assert list(cache) == [4, 5, 6, 7, 8, 9]  # within its limit, untouched
