"""Rendered manifests: valid against Kubernetes 1.32 schemas, and every rule of issue 5 holds."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.samples import FULL_HANDLER, FULL_MODULE, handler, module, version
from gati_contracts.fieldtypes import (
    ENV_VAR_NAME_PATTERN,
    HANDLER_PATH_PATTERN,
    LABEL_VALUE_PATTERN,
)
from gati_contracts.handler import GatiHandler
from gati_contracts.labels import FIELD_MANAGER, MANAGED_BY_LABEL
from gati_contracts.module import GatiModule
from gati_contracts.ownership import is_rfc1035_label
from gati_contracts.version import GatiVersion
from gati_reconciler import manifests
from gati_reconciler.manifests import (
    CONFIG_HASH_ANNOTATION,
    HANDLER_PATH_KEY,
    KINDS_OWNED_BY,
    ManifestError,
    deployment_replicas,
    render,
    render_handler,
    render_module,
)

LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "gati.dev/handler-path",
    "gati.dev/version",
}
SECRET_ENV = {"valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
OTHER_SECRET = {"valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}}


def live(raw: dict[str, Any], uid: str = "0f4c7a56-1111-4c2e-9d7e-000000000001") -> dict[str, Any]:
    """The object as the API server returns it: with a uid, which owner references need."""
    raw = copy.deepcopy(raw)
    raw["metadata"]["uid"] = uid
    return raw


def gh(**spec: Any) -> GatiHandler:
    return GatiHandler.model_validate(live(handler(**spec)))


def gm(**spec: Any) -> GatiModule:
    return GatiModule.model_validate(live(module(**spec)))


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [obj["kind"] for obj in objects]
    assert len(kinds) == len(set(kinds)), kinds
    return {obj["kind"]: obj for obj in objects}


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(objects)["Deployment"]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(objects)["spec"]["template"]["spec"]
    return spec


def env_hash(objects: list[dict[str, Any]]) -> str:
    annotations = deployment(objects)["spec"]["template"]["metadata"]["annotations"]
    return str(annotations[CONFIG_HASH_ANNOTATION])


SAMPLES: dict[str, GatiHandler | GatiModule] = {
    "minimal handler": gh(),
    "full handler": GatiHandler.model_validate(live(FULL_HANDLER)),
    "handler, 3 replicas": gh(replicas=3),
    "handler, 0 replicas": gh(replicas=0),
    "handler, hpa": gh(scaling={"mode": "hpa", "maxReplicas": 4}),
    "handler, odd path": gh(handlerPath="/users/:id/orders;v=1/" + "x" * 80),
    "minimal module": gm(),
    "full module": GatiModule.model_validate(live(FULL_MODULE)),
    "module, every capability": gm(
        capabilities=["network-egress", "network-ingress", "filesystem-write", "net-bind-service"],
        replicas=2,
    ),
}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLES |= {
    f"example {path.name}": GatiHandler.model_validate(live(doc))
    if doc["kind"] == "GatiHandler"
    else GatiModule.model_validate(live(doc))
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc and doc["kind"] in ("GatiHandler", "GatiModule")
}
ALL_OBJECTS = [
    pytest.param(obj, id=f"{sample}: {obj['kind']}")
    for sample, resource in SAMPLES.items()
    for obj in render(resource)
]
ALL_RENDERS = [pytest.param(resource, id=sample) for sample, resource in SAMPLES.items()]


@pytest.mark.parametrize("obj", ALL_OBJECTS)
def test_objects_match_the_kubernetes_schema(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.32", strict=True)


@pytest.mark.parametrize("obj", ALL_OBJECTS)
def test_objects_carry_valid_labels_a_valid_name_and_a_controller_reference(
    obj: dict[str, Any],
) -> None:
    metadata = obj["metadata"]
    assert is_rfc1035_label(metadata["name"])
    assert metadata["namespace"] == "shop"
    for labels in (
        metadata["labels"],
        obj["spec"]["template"]["metadata"]["labels"] if obj["kind"] == "Deployment" else {},
    ):
        for key, value in labels.items():
            assert LABEL_KEY.fullmatch(key), key
            assert len(value) <= 63, (key, value)
            assert LABEL_VALUE.fullmatch(value), (key, value)
    assert metadata["labels"][MANAGED_BY_LABEL] == FIELD_MANAGER
    [owner] = metadata["ownerReferences"]
    assert owner["controller"] is True
    assert owner["blockOwnerDeletion"] is True
    assert owner["uid"] == "0f4c7a56-1111-4c2e-9d7e-000000000001"
    assert owner["apiVersion"] == "gati.dev/v1alpha1"
    assert owner["kind"] in ("GatiHandler", "GatiModule")


def test_handler_objects_carry_the_standard_labels_and_the_exact_path() -> None:
    resource = gh(handlerPath="/users/:id", version="v3")
    for obj in render(resource):
        labels = obj["metadata"]["labels"]
        assert set(labels) >= STANDARD_LABELS
        assert labels["app.kubernetes.io/component"] == "handler"
        assert labels["gati.dev/version"] == labels["app.kubernetes.io/version"] == "v3"
        assert labels[HANDLER_PATH_KEY].startswith("users._id-")
        assert obj["metadata"]["annotations"][HANDLER_PATH_KEY] == "/users/:id"


def test_module_version_label_comes_from_a_usable_image_tag() -> None:
    tagged = by_kind(render(gm(image="registry:5000/acme/auth:1.4.0")))["Deployment"]
    assert tagged["metadata"]["labels"]["app.kubernetes.io/version"] == "1.4.0"
    for image in ("registry:5000/acme/auth", "acme/auth@sha256:" + "a" * 64):
        labels = deployment(render(gm(image=image)))["metadata"]["labels"]
        assert "app.kubernetes.io/version" not in labels
        assert labels["app.kubernetes.io/component"] == "module"


@pytest.mark.parametrize("resource", ALL_RENDERS)
def test_selectors_pick_the_pods_and_survive_any_spec_change(
    resource: GatiHandler | GatiModule,
) -> None:
    objects = by_kind(render(resource))
    selector = objects["Deployment"]["spec"]["selector"]["matchLabels"]
    pod_labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert objects["Service"]["spec"]["selector"] == selector
    changed = resource.model_copy(deep=True)
    changed.spec.image = "ghcr.io/acme/other:9"
    changed.spec.replicas = 7
    changed.spec.port = 9000
    changed.spec.env = {}
    if isinstance(changed, GatiHandler):
        changed.spec.handler_path = "/elsewhere"
        changed.spec.version = "v99"
    assert deployment(render(changed))["spec"]["selector"]["matchLabels"] == selector


@pytest.mark.parametrize(
    ("scaling", "replicas", "expected"),
    [
        (None, 3, 3),
        (None, 0, 0),
        ({"mode": "none"}, 2, 2),
        ({"mode": "hpa"}, 3, None),
        ({"mode": "events", "targetRequestsPerReplica": 50}, 3, None),
    ],
)
def test_replicas_are_left_to_the_scaler_when_it_owns_them(
    scaling: dict[str, Any] | None, replicas: int, expected: int | None
) -> None:
    resource = gh(replicas=replicas) if scaling is None else gh(replicas=replicas, scaling=scaling)
    assert deployment_replicas(resource.spec) == expected
    spec = deployment(render(resource))["spec"]
    if expected is None:
        assert "replicas" not in spec
    else:
        assert spec["replicas"] == expected


def test_modules_always_carry_their_replicas() -> None:
    assert deployment(render(gm(replicas=4)))["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    ("resource", "several"),
    [
        (gh(replicas=0), False),
        (gh(replicas=1), False),
        (gh(replicas=2), True),
        (gh(replicas=5, scaling={"mode": "hpa", "minReplicas": 1, "maxReplicas": 1}), False),
        (gh(replicas=1, scaling={"mode": "hpa", "maxReplicas": 3}), True),
        (gm(replicas=1), False),
        (gm(replicas=3), True),
    ],
)
def test_disruption_budget_and_spreading_only_when_several_pods_may_run(
    resource: GatiHandler | GatiModule, several: bool
) -> None:
    objects = by_kind(render(resource))
    assert ("PodDisruptionBudget" in objects) is several
    assert ("topologySpreadConstraints" in pod_spec(render(resource))) is several
    if several:
        budget = objects["PodDisruptionBudget"]["spec"]
        assert budget["maxUnavailable"] == 1
        assert budget["selector"] == objects["Deployment"]["spec"]["selector"]
        spread = pod_spec(render(resource))["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} == {
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
        }


@pytest.mark.parametrize("resource", ALL_RENDERS)
def test_rendered_kinds_are_among_those_the_resource_may_own(
    resource: GatiHandler | GatiModule,
) -> None:
    owned = {(info.api_version, info.kind) for info in KINDS_OWNED_BY[resource.kind]}
    assert {(obj["apiVersion"], obj["kind"]) for obj in render(resource)} <= owned


@pytest.mark.parametrize("resource", ALL_RENDERS)
def test_restricted_pod_security_everywhere(resource: GatiHandler | GatiModule) -> None:
    spec = pod_spec(render(resource))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["privileged"] is False
        assert security["runAsNonRoot"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        assert set(security["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}


@pytest.mark.parametrize("resource", ALL_RENDERS)
def test_rollout_keeps_capacity_and_probes_watch_the_port(
    resource: GatiHandler | GatiModule,
) -> None:
    spec = deployment(render(resource))["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    [container] = spec["template"]["spec"]["containers"]
    [port] = container["ports"]
    assert port["containerPort"] == resource.spec.port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"]["port"] == port["name"]
    service_port = by_kind(render(resource))["Service"]["spec"]["ports"][0]
    assert service_port["port"] == resource.spec.port
    assert service_port["targetPort"] == port["name"]


def test_resources_come_from_the_spec() -> None:
    [container] = pod_spec(render(GatiHandler.model_validate(live(FULL_HANDLER))))["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "64Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    [bare] = pod_spec(render(gh()))["containers"]
    assert "resources" not in bare
    assert "env" not in bare


def test_plain_env_lives_in_the_config_map_and_secrets_stay_references() -> None:
    objects = by_kind(render(gh(env={"LOG_LEVEL": "debug", "DB_PASSWORD": SECRET_ENV})))
    config_map = objects["ConfigMap"]
    assert config_map["data"] == {"LOG_LEVEL": "debug"}
    [container] = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {"name": "DB_PASSWORD", "valueFrom": SECRET_ENV["valueFrom"]},
        {
            "name": "LOG_LEVEL",
            "valueFrom": {
                "configMapKeyRef": {"name": config_map["metadata"]["name"], "key": "LOG_LEVEL"}
            },
        },
    ]


BASE_ENV: dict[str, Any] = {"A": "1", "B": "2", "SECRET": SECRET_ENV}


@pytest.mark.parametrize(
    ("change", "rolls"),
    [
        ({"env": {**BASE_ENV, "A": "changed"}}, True),
        ({"env": {**BASE_ENV, "C": "3"}}, True),
        ({"env": {"B": "2", "SECRET": SECRET_ENV}}, True),
        ({"env": {"SECRET": SECRET_ENV, "B": "2", "A": "1"}}, False),
        (
            {
                "env": {
                    **BASE_ENV,
                    "SECRET": {"valueFrom": {"secretKeyRef": {"name": "x", "key": "k"}}},
                }
            },
            False,
        ),
        ({"env": BASE_ENV, "image": "ghcr.io/acme/u:3"}, False),
        ({"env": BASE_ENV, "replicas": 5}, False),
    ],
)
def test_env_hash_changes_exactly_when_the_config_map_data_does(
    change: dict[str, Any], rolls: bool
) -> None:
    before = render(gh(env=BASE_ENV))
    after = render(gh(**change))
    assert (env_hash(before) != env_hash(after)) is rolls
    config_before = by_kind(before)["ConfigMap"]["data"]
    assert (config_before != by_kind(after)["ConfigMap"]["data"]) is rolls


def test_module_sandbox_read_only_root_with_tmp() -> None:
    spec = pod_spec(render(gm()))
    [container] = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert spec["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert "add" not in container["securityContext"]["capabilities"]
    [writable] = pod_spec(render(gm(capabilities=["filesystem-write"])))["containers"]
    assert writable["securityContext"]["readOnlyRootFilesystem"] is False
    [binder] = pod_spec(render(gm(capabilities=["net-bind-service"])))["containers"]
    assert binder["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]


def test_handlers_keep_a_writable_root() -> None:
    [container] = pod_spec(render(gh()))["containers"]
    assert "readOnlyRootFilesystem" not in container["securityContext"]
    assert "volumes" not in pod_spec(render(gh()))


DNS_ONLY = [
    {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
]
SAME_NAMESPACE: list[dict[str, Any]] = [{"podSelector": {}}]


@pytest.mark.parametrize(
    ("capabilities", "policy_types", "egress", "ingress_from"),
    [
        ([], ["Ingress", "Egress"], DNS_ONLY, SAME_NAMESPACE),
        (["filesystem-write"], ["Ingress", "Egress"], DNS_ONLY, SAME_NAMESPACE),
        (["net-bind-service"], ["Ingress", "Egress"], DNS_ONLY, SAME_NAMESPACE),
        (["network-egress"], ["Ingress"], None, SAME_NAMESPACE),
        (["network-ingress"], ["Ingress", "Egress"], DNS_ONLY, None),
        (["network-ingress", "network-egress"], ["Ingress"], None, None),
    ],
)
def test_module_network_policy_per_capability(
    capabilities: list[str],
    policy_types: list[str],
    egress: list[dict[str, Any]] | None,
    ingress_from: list[dict[str, Any]] | None,
) -> None:
    objects = render(gm(capabilities=capabilities, port=9090))
    assert objects[0]["kind"] == "NetworkPolicy", "the policy must exist before the pods"
    policy = objects[0]["spec"]
    assert policy["podSelector"] == deployment(objects)["spec"]["selector"]
    assert policy["policyTypes"] == policy_types
    assert policy.get("egress") == egress
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert ingress.get("from") == ingress_from


def test_handlers_get_no_network_policy() -> None:
    assert "NetworkPolicy" not in by_kind(render(gh()))


def test_a_gati_version_names_the_deployment_and_service() -> None:
    resource = gh()
    named = GatiVersion.model_validate(version(deploymentName="users-dep", serviceName="users-svc"))
    objects = by_kind(render_handler(resource, named))
    assert objects["Deployment"]["metadata"]["name"] == "users-dep"
    assert objects["Service"]["metadata"]["name"] == "users-svc"
    assert objects["ConfigMap"]["metadata"]["name"] == "users-dep-env"
    unnamed = GatiVersion.model_validate(version())
    assert render_handler(resource, unnamed) == render(resource)


def test_long_and_dotted_names_stay_valid_and_apart() -> None:
    first = handler()
    first["metadata"]["name"] = "users.v2"
    second = handler()
    second["metadata"]["name"] = "users-v2"
    names = {
        json.dumps([obj["metadata"]["name"] for obj in render(GatiHandler.model_validate(live(r)))])
        for r in (first, second)
    }
    assert len(names) == 2
    long = handler()
    long["metadata"]["name"] = "a" * 63
    for obj in render(GatiHandler.model_validate(live(long))):
        assert is_rfc1035_label(obj["metadata"]["name"])


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"handlerRef": {"name": "someone-else"}}, "spec.handlerRef.name"),
        ({"serviceName": "2fast"}, "spec.serviceName"),
    ],
)
def test_a_version_the_handler_cannot_use_names_the_field(spec: dict[str, Any], field: str) -> None:
    bad = GatiVersion.model_validate(version(**spec))
    with pytest.raises(ManifestError) as caught:
        render_handler(gh(), bad)
    assert caught.value.problem.path == field


@pytest.mark.parametrize("field", ["uid", "namespace"])
def test_objects_not_read_from_the_server_are_refused_with_the_field(field: str) -> None:
    raw = live(handler())
    del raw["metadata"][field]
    with pytest.raises(ManifestError, match=f"metadata.{field}: is required"):
        render(GatiHandler.model_validate(raw))
    raw_module = live(module())
    del raw_module["metadata"][field]
    with pytest.raises(ManifestError, match=f"metadata.{field}"):
        render_module(GatiModule.model_validate(raw_module))


@pytest.mark.parametrize("resource", ALL_RENDERS)
def test_rendering_is_deterministic_and_independent_of_key_order(
    resource: GatiHandler | GatiModule,
) -> None:
    wire = resource.to_wire()
    reordered = json.loads(json.dumps(wire, sort_keys=True))
    spec = reordered["spec"]
    spec["env"] = dict(reversed(list(spec.get("env", {}).items())))
    again = type(resource).model_validate(reordered)
    first = json.dumps(render(resource))
    assert json.dumps(render(again)) == first
    assert json.dumps(render(type(resource).model_validate(wire))) == first


def _containers(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [container] = pod_spec(objects)["containers"]
    assert isinstance(container, dict)
    return container


def test_a_spec_change_shares_what_it_left_alone() -> None:
    """Renders are immutable: what an image and env change does not touch is the very object
    the render before held, so a diff passes over it by identity."""
    first = render(gh(replicas=2, env={"A": "1"}))
    frozen = json.dumps(first)
    second = render(gh(replicas=2, env={"A": "2"}, image="ghcr.io/acme/users:9"))
    before, after = by_kind(first), by_kind(second)
    assert after["Service"] is before["Service"]
    assert after["PodDisruptionBudget"] is before["PodDisruptionBudget"]
    assert after["ConfigMap"]["metadata"] is before["ConfigMap"]["metadata"]
    assert after["Deployment"]["metadata"] is before["Deployment"]["metadata"]
    assert after["Deployment"]["spec"]["selector"] is before["Deployment"]["spec"]["selector"]
    shared = ("ports", "env", "readinessProbe", "livenessProbe", "securityContext")
    for key in shared:
        assert _containers(second)[key] is _containers(first)[key], key
    assert _containers(second)["image"] == "ghcr.io/acme/users:9"
    assert after["ConfigMap"]["data"] == {"A": "2"}
    assert json.dumps(first) == frozen, "rendering again changed nothing of the first render"


@pytest.mark.parametrize(
    "change",
    [{"port": 9090}, {"handlerPath": "/api/other"}, {"version": "v7"}],
)
def test_a_change_of_what_the_shared_parts_hold_renders_them_anew(change: dict[str, Any]) -> None:
    first = render(gh(replicas=2))
    frozen = json.dumps(first)
    second = render(gh(replicas=2, **change))
    assert by_kind(second)["Service"] is not by_kind(first)["Service"]
    assert second == json.loads(json.dumps(render(gh(replicas=2, **change))))
    assert json.dumps(first) == frozen


def test_another_object_shares_nothing_that_names_it() -> None:
    first = by_kind(render(gh(replicas=2)))
    other_raw = live(handler(replicas=2), uid="0f4c7a56-1111-4c2e-9d7e-000000000002")
    other = by_kind(render(GatiHandler.model_validate(other_raw)))
    assert other["Service"] is not first["Service"]
    assert other["Deployment"]["metadata"]["ownerReferences"][0]["uid"].endswith("02")
    assert first["Deployment"]["metadata"]["ownerReferences"][0]["uid"].endswith("01")


def test_shared_parts_are_kept_for_a_bounded_number_of_identities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(manifests, "FRAMES_KEPT", 2)
    monkeypatch.setattr(manifests, "_frames", {})
    uids = [f"0f4c7a56-1111-4c2e-9d7e-00000000010{n}" for n in range(3)]
    resources = [GatiHandler.model_validate(live(handler(), uid=uid)) for uid in uids]
    services = [by_kind(render(resource))["Service"] for resource in resources]
    assert len(manifests._frames) == 2
    again = by_kind(render(resources[0]))["Service"]
    assert again is not services[0], "the oldest identity was dropped and built again"
    assert again == services[0]
    assert by_kind(render(resources[2]))["Service"] is services[2]


def test_a_refused_resource_is_refused_on_every_render() -> None:
    raw = live(handler())
    del raw["metadata"]["uid"]
    for _ in range(2):
        with pytest.raises(ManifestError, match=r"metadata\.uid"):
            render(GatiHandler.model_validate(raw))


env_names = st.from_regex(ENV_VAR_NAME_PATTERN, fullmatch=True).filter(lambda n: len(n) <= 40)
env_values = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda name, key: {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}},
        st.sampled_from(["db", "api-keys", "a.b"]),
        st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True),
    ),
)
scalings = st.one_of(
    st.just({"mode": "none"}),
    st.builds(lambda high: {"mode": "hpa", "maxReplicas": high}, st.integers(1, 50)),
    st.builds(
        lambda high: {"mode": "events", "maxReplicas": high, "targetRequestsPerReplica": 10},
        st.integers(1, 50),
    ),
)
handler_specs = st.fixed_dictionaries(
    {
        "handlerPath": st.from_regex(HANDLER_PATH_PATTERN, fullmatch=True).filter(
            lambda p: len(p) <= 300
        ),
        "replicas": st.integers(0, 20),
        "port": st.integers(1, 65535),
        "env": st.dictionaries(env_names, env_values, max_size=5),
        "scaling": scalings,
    }
)


@settings(max_examples=40)
@given(handler_specs)
def test_any_valid_handler_renders_schema_valid_objects(spec: dict[str, Any]) -> None:
    objects = render(gh(**spec))
    for obj in objects:
        kubernetes_validate.validate(obj, "1.32", strict=True)
        for value in obj["metadata"]["labels"].values():
            assert LABEL_VALUE.fullmatch(value)
    plain = {k: v for k, v in spec["env"].items() if isinstance(v, str)}
    assert by_kind(objects)["ConfigMap"]["data"] == plain
