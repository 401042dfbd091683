"""Resource models: good specs survive a wire round trip, bad ones are refused with advice."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.samples import FULL_HANDLER, FULL_MODULE, FULL_VERSION, handler, module, version
from gati_contracts.env import EnvValue, container_env
from gati_contracts.handler import GatiHandler
from gati_contracts.objects import InvalidObjectError, parse_object
from gati_contracts.problems import describe
from gati_contracts.version import GatiVersion


@pytest.mark.parametrize(
    "wire", [FULL_HANDLER, FULL_MODULE, FULL_VERSION, handler(), module(), version()]
)
def test_good_objects_round_trip_through_wire_json(wire: dict[str, Any]) -> None:
    parsed = parse_object(wire)
    again = parse_object(json.loads(json.dumps(parsed.to_wire())))
    assert again == parsed
    written = parsed.to_wire()
    for key in ("spec", "metadata"):
        # Every field the user wrote comes back as written (defaults may be added around it).
        assert _contains(written[key], wire[key]), key


def _contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _contains(big[k], v) for k, v in small.items()
        )
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(_contains, big, small))
    if isinstance(small, int | float) and isinstance(big, str):
        return big == str(small)  # quantities written as bare numbers come back as text
    return bool(big == small)


def test_python_names_and_wire_names_both_populate() -> None:
    by_name = GatiHandler.model_validate(
        {
            "kind": "GatiHandler",
            "metadata": {"name": "a"},
            "spec": {"handler_path": "/a", "version": "v1", "image": "i"},
        }
    )
    assert by_name.spec.handler_path == "/a"
    assert by_name.to_wire()["spec"]["handlerPath"] == "/a"


def test_defaults_are_what_a_user_expects() -> None:
    spec = GatiHandler.from_wire(handler()).spec
    assert (spec.replicas, spec.port, spec.scaling.mode, spec.scaling.min_replicas) == (
        1,
        8080,
        "none",
        1,
    )
    assert [(s.weight, s.pause) for s in spec.timescape.rollout.steps] == [
        (10, "5m"),
        (50, "10m"),
        (100, None),
    ]
    assert spec.timescape.rollout.analysis.failure_threshold == 1
    decommission = GatiVersion.from_wire(version()).spec.decommission
    assert (decommission.action, decommission.idle_samples) == ("delete", 5)


def test_shared_defaults_cannot_be_changed_through_one_resource() -> None:
    """Defaults are built once and shared (validating them per parse was a third of a parse):
    the shared parts are frozen, and their lists and maps read-only to the type checker."""
    first, second = (GatiHandler.model_validate(handler()) for _ in range(2))
    assert first.spec.timescape is second.spec.timescape
    assert first.spec.resources is second.spec.resources
    assert first.spec.scaling is second.spec.scaling
    shared = first.spec.timescape.rollout
    for model, field, value in [
        (first.spec.scaling, "max_replicas", 99),
        (first.spec.timescape, "breaking", True),
        (shared, "steps", []),
        (shared.analysis, "failure_threshold", 9),
        (shared.steps[0], "weight", 5),
        (first.spec.resources, "requests", {"cpu": "1"}),
    ]:
        with pytest.raises(ValidationError, match="frozen"):
            setattr(model, field, value)
    assert GatiHandler.model_validate(handler()).spec.to_wire() == second.spec.to_wire()
    first_version, second_version = (GatiVersion.model_validate(version()) for _ in range(2))
    assert first_version.spec.decommission is second_version.spec.decommission
    with pytest.raises(ValidationError, match="frozen"):
        first_version.spec.decommission.grace_seconds = 1  # type: ignore[misc]


def test_a_section_written_out_is_its_own() -> None:
    written = handler(
        timescape={"breaking": True},
        resources={"requests": {"cpu": "1"}},
        scaling={"maxReplicas": 3},
    )
    spec = GatiHandler.model_validate(written).spec
    default = GatiHandler.model_validate(handler()).spec
    assert (spec.timescape.breaking, spec.scaling.max_replicas) == (True, 3)
    assert spec.resources.requests == {"cpu": "1"}
    assert (default.timescape.breaking, default.scaling.max_replicas) == (False, 10)
    assert default.resources.requests == {}
    assert spec.timescape.rollout is default.timescape.rollout  # left out within timescape


def test_env_keeps_plain_strings_and_becomes_a_container_env_list() -> None:
    spec = GatiHandler.from_wire(FULL_HANDLER).spec
    assert spec.to_wire()["env"]["LOG_LEVEL"] == "debug"
    assert container_env(spec.env) == [
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    ]
    assert EnvValue.model_validate("x").value == "x"


def test_metadata_leaves_out_empty_collections_and_keeps_server_fields() -> None:
    wire = handler()
    wire["metadata"] |= {
        "uid": "u1",
        "resourceVersion": "7",
        "generation": 2,
        "managedFields": [{}],
    }
    meta = GatiHandler.from_wire(wire).to_wire()["metadata"]
    assert meta == {
        "name": "users-v2",
        "namespace": "shop",
        "uid": "u1",
        "resourceVersion": "7",
        "generation": 2,
    }


def _set(wire: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    wire = copy.deepcopy(wire)
    *parents, last = path.split(".")
    node = wire
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return wire


# (object, wire path set to a bad value, value, field named in the message, words of the advice)
BAD = [
    (handler(), "spec.handlerPath", "api/users", "spec.handlerPath", "starting with '/'"),
    (handler(), "spec.handlerPath", "/api users", "spec.handlerPath", "no spaces"),
    (handler(), "spec.port", 0, "spec.port", "greater than or equal to 1"),
    (handler(), "spec.port", 70000, "spec.port", "less than or equal to 65535"),
    (handler(), "spec.replicas", -1, "spec.replicas", "greater than or equal to 0"),
    (handler(), "spec.version", "v 2", "spec.version", "label value"),
    (handler(), "spec.image", "", "spec.image", "image reference"),
    (
        handler(),
        "spec.resources.limits.memory",
        "12x",
        "spec.resources.limits.memory",
        "such as 128Mi or 500m",
    ),
    (handler(), "spec.resources.requests.cpu", "-1", "spec.resources.requests.cpu", "negative"),
    (handler(), "spec.resources.requests.cpu", True, "spec.resources.requests.cpu", "quantity"),
    (
        handler(),
        "spec.resources.limits",
        {"bad name!": "1"},
        "spec.resources.limits.bad name!",
        "resource name",
    ),
    (
        handler(resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
        "spec.replicas",
        1,
        "spec.resources",
        "requests.memory (2Gi) must not exceed limits.memory (1Gi)",
    ),
    (handler(), "spec.env", {"1BAD": "x"}, "spec.env.1BAD", "environment variable name"),
    (handler(), "spec.env", {"OK": 5}, "spec.env.OK", "must be a string"),
    (
        handler(),
        "spec.env",
        {"OK": {"valueFrom": {}}},
        "spec.env.OK.valueFrom",
        "exactly one of secretKeyRef",
    ),
    (
        handler(),
        "spec.env",
        {"OK": {"valueFrom": {"secretKeyRef": {"name": "Db", "key": "k"}}}},
        "spec.env.OK.valueFrom.secretKeyRef.name",
        "DNS-1123 subdomain",
    ),
    (
        handler(),
        "spec.timescape.routingWeight",
        101,
        "spec.timescape.routingWeight",
        "less than or equal to 100",
    ),
    (
        handler(),
        "spec.timescape.rollout.steps",
        [{"weight": 50}, {"weight": 10}],
        "spec.timescape.rollout",
        "strictly increasing",
    ),
    (
        handler(),
        "spec.timescape.rollout.steps",
        [{"weight": 50}],
        "spec.timescape.rollout",
        "weight 100",
    ),
    (handler(), "spec.timescape.rollout.steps", [], "spec.timescape.rollout.steps", "at least 1"),
    (
        handler(),
        "spec.timescape.rollout.steps",
        [{"weight": 10, "pause": "5 minutes"}, {"weight": 100}],
        "spec.timescape.rollout.steps[0].pause",
        "such as 30s, 5m or 1h30m",
    ),
    (
        handler(),
        "spec.timescape.rollout.analysis.minSuccessRate",
        99,
        "spec.timescape.rollout.analysis.minSuccessRate",
        "less than or equal to 1",
    ),
    (
        handler(),
        "spec.timescape.rollout.analysis.failureThreshold",
        0,
        "spec.timescape.rollout.analysis.failureThreshold",
        "greater than or equal to 1",
    ),
    (
        handler(),
        "spec.scaling",
        {"minReplicas": 5, "maxReplicas": 2},
        "spec.scaling",
        "minReplicas (5) must not exceed",
    ),
    (handler(), "spec.scaling.mode", "keda", "spec.scaling.mode", "'none', 'hpa' or 'events'"),
    (handler(), "spec.scaling", {"mode": "events"}, "spec.scaling", "targetRequestsPerReplica"),
    (
        handler(),
        "spec.scaling",
        {"mode": "hpa", "scaleToZero": True},
        "spec.scaling",
        "needs mode events",
    ),
    (
        handler(),
        "spec.scaling.targetCPUUtilization",
        0,
        "spec.scaling.targetCPUUtilization",
        "greater than or equal",
    ),
    (handler(), "spec.handlerpath", "/x", "spec.handlerpath", "not a known field"),
    (handler(), "metadata.name", "Users_V2", "metadata.name", "DNS-1123 subdomain"),
    (handler(), "metadata.name", "a" * 64, "metadata.name", "at most 63 characters"),
    (handler(), "metadata.namespace", "a.b", "metadata.namespace", "DNS-1123 label"),
    (module(), "spec.moduleType", "python", "spec.moduleType", "'node', 'wasm' or 'oci'"),
    (module(), "spec.capabilities", ["root"], "spec.capabilities[0]", "'network-egress'"),
    (
        module(),
        "spec.capabilities",
        ["network-egress", "network-egress"],
        "spec",
        "each grant once",
    ),
    (module(), "spec.moduleName", "bad name", "spec.moduleName", "module name"),
    (version(), "spec.handlerRef", {}, "spec.handlerRef.name", "is required"),
    (
        version(),
        "spec.decommission.action",
        "archive",
        "spec.decommission.action",
        "'delete' or 'scaleToZero'",
    ),
    (
        version(),
        "spec.decommission.idleSamples",
        0,
        "spec.decommission.idleSamples",
        "greater than or equal to 1",
    ),
    (version(), "spec.serviceName", "Users.V2", "spec.serviceName", "DNS-1123 label"),
    (version(), "spec.versionId", "-v2", "spec.versionId", "label value"),
    (version(), "spec.transformers", ["ok", ""], "spec.transformers[1]", "at least 1 character"),
]


@pytest.mark.parametrize(("base", "path", "value", "field", "advice"), BAD)
def test_bad_specs_are_refused_naming_the_field_and_the_fix(
    base: dict[str, Any], path: str, value: Any, field: str, advice: str
) -> None:
    with pytest.raises(InvalidObjectError) as caught:
        parse_object(_set(base, path, value))
    problems = {str(p.path): p.message for p in caught.value.problems}
    assert field in problems, problems
    assert advice in problems[field], problems[field]


def test_enough_bad_specs_are_covered() -> None:
    assert len(BAD) >= 20


def test_env_values_are_never_echoed_in_messages() -> None:
    with pytest.raises(ValidationError) as caught:
        GatiHandler.from_wire(handler(env={"TOKEN": {"value": "s3cret", "valueFrom": {}}}))
    assert "s3cret" not in describe(caught.value)


def test_values_outside_env_are_echoed_to_help_the_user() -> None:
    with pytest.raises(ValidationError) as caught:
        GatiHandler.from_wire(handler(port=70000))
    assert "spec.port: must be less than or equal to 65535 (got 70000)" in describe(caught.value)


@pytest.mark.parametrize(
    "data", [{}, {"kind": "Pod"}, {"kind": 3, "metadata": "x"}, {"kind": "GatiHandler"}, [], None]
)
def test_unknown_or_shapeless_objects_raise_the_typed_error(data: object) -> None:
    with pytest.raises(InvalidObjectError):
        parse_object(data)
