"""CRUD conventions through the official client: codes, reasons, metadata the server owns."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _status(exc: ApiException) -> dict[str, object]:
    body: dict[str, object] = json.loads(exc.body)
    return body


def test_create_sets_server_owned_metadata(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    cm = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "a", "uid": "forged"}, "data": {"k": "v"}}
    )
    assert cm.metadata.uid
    assert cm.metadata.uid != "forged"
    assert cm.metadata.creation_timestamp is not None
    assert int(cm.metadata.resource_version) > 0
    assert cm.metadata.managed_fields[0].manager  # defaulted from the User-Agent


def test_resource_versions_come_from_one_counter(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    a = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    s = core.create_namespaced_secret(kube_namespace, {"metadata": {"name": "s"}})
    b = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "b"}})
    rvs = [int(o.metadata.resource_version) for o in (a, s, b)]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 3


def test_stale_update_gets_409_conflict(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    first = core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    first.data = {"x": "1"}
    core.replace_namespaced_config_map("a", kube_namespace, first)
    first.data = {"x": "2"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", kube_namespace, first)
    assert err.value.status == 409
    assert _status(err.value)["reason"] == "Conflict"
    assert core.read_namespaced_config_map("a", kube_namespace).data == {"x": "1"}


def test_duplicate_create_is_already_exists(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    assert err.value.status == 409
    status = _status(err.value)
    assert status["reason"] == "AlreadyExists"
    assert status["kind"] == "Status"
    assert status["details"] == {"name": "a", "kind": "configmaps"}


def test_missing_object_is_404_status(kube_api: client.ApiClient, kube_namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).read_namespaced_config_map("nope", kube_namespace)
    assert err.value.status == 404
    status = _status(err.value)
    assert status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "nope" not found'


def test_create_in_missing_namespace_is_404(kube_api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            "no-such-ns", {"metadata": {"name": "a"}}
        )
    assert err.value.status == 404
    assert 'namespaces "no-such-ns" not found' in _status(err.value)["message"]  # type: ignore[operator]


def test_invalid_name_is_422_naming_the_field(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            kube_namespace, {"metadata": {"name": "Not_Valid"}}
        )
    assert err.value.status == 422
    causes = _status(err.value)["details"]["causes"]  # type: ignore[index]
    assert causes[0]["field"] == "metadata.name"


def test_generate_name(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(kube_namespace, {"metadata": {"generateName": "x-"}})
    assert made.metadata.name.startswith("x-")
    assert len(made.metadata.name) == 7


def test_namespace_in_body_must_match_url(kube_api: client.ApiClient, kube_namespace: str) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            kube_namespace, {"metadata": {"name": "a", "namespace": "default"}}
        )
    assert err.value.status == 400


def test_no_op_update_keeps_resource_version(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "a"}, "data": {"k": "v"}}
    )
    again = core.replace_namespaced_config_map("a", kube_namespace, made)
    assert again.metadata.resource_version == made.metadata.resource_version


def test_label_selectors_equality_and_set_based(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    for name, labels in {
        "a": {"tier": "web", "env": "prod"},
        "b": {"tier": "db", "env": "prod"},
        "c": {"tier": "web"},
    }.items():
        core.create_namespaced_config_map(
            kube_namespace, {"metadata": {"name": name, "labels": labels}}
        )

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map(kube_namespace, label_selector=selector).items
        return [i.metadata.name for i in items]

    assert names("tier=web") == ["a", "c"]
    assert names("tier!=web") == ["b"]
    assert names("env in (prod),tier notin (db)") == ["a"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c"]
    with pytest.raises(ApiException) as err:
        names("tier in (")
    assert err.value.status == 400


def test_field_selectors(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    for name in ("a", "b"):
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": name}})
    got = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={kube_namespace},metadata.name!=a"
    )
    assert [i.metadata.name for i in got.items] == ["b"]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(kube_namespace, field_selector="data.k=v")
    assert err.value.status == 400


def test_limit_and_continue_page_through_everything(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    for i in range(7):
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": f"cm-{i}"}})
    seen: list[str] = []
    token = None
    while True:
        page = core.list_namespaced_config_map(kube_namespace, limit=3, _continue=token)
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(seen)
    assert seen == [f"cm-{i}" for i in range(7)]


def test_delete_returns_success_status(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "a"}})
    # The client returns the raw Status here, as the API declares the response an object.
    status = kube_api.sanitize_for_serialization(
        core.delete_namespaced_config_map("a", kube_namespace)
    )
    assert status["kind"] == "Status"
    assert status["status"] == "Success"
    assert status["details"]["name"] == "a"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("a", kube_namespace)
    assert err.value.status == 404


def test_delete_collection_by_label(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "a", "labels": {"x": "1"}}}
    )
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "b"}})
    core.delete_collection_namespaced_config_map(kube_namespace, label_selector="x=1")
    assert [i.metadata.name for i in core.list_namespaced_config_map(kube_namespace).items] == ["b"]


def test_secret_string_data_is_encoded(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_secret(
        kube_namespace, {"metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}}
    )
    assert made.data == {"pw": "aHVudGVyMg=="}
    assert made.type == "Opaque"


def test_secret_data_with_line_breaks_is_decoded_as_the_api_server_does(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    wrapped = "aHVudGVy\r\nMg==\n"
    made = core.create_namespaced_secret(
        kube_namespace, {"metadata": {"name": "wrapped"}, "data": {"pw": wrapped}}
    )
    assert made.data == {"pw": "aHVudGVyMg=="}
    with pytest.raises(ApiException) as bad:
        core.create_namespaced_secret(
            kube_namespace, {"metadata": {"name": "bad"}, "data": {"pw": "aHVu\ndGVy!"}}
        )
    assert bad.value.status == 422
    assert "data[pw]" in str(bad.value.body)


def test_every_listed_builtin_kind_round_trips(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    custom = client.CustomObjectsApi(kube_api)
    samples = [
        ("coordination.k8s.io", "v1", "leases", "Lease", {"holderIdentity": "me"}),
        ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", {"minAvailable": 1}),
        ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", {"podSelector": {}}),
        (
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            {
                "scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"},
                "maxReplicas": 3,
            },
        ),
        ("events.k8s.io", "v1", "events", "Event", {}),
    ]
    for group, version, plural, kind, spec in samples:
        body = {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": "x"}}
        if kind != "Event":
            body["spec"] = spec
        made = custom.create_namespaced_custom_object(group, version, kube_namespace, plural, body)
        assert made["kind"] == kind
        got = custom.get_namespaced_custom_object(group, version, kube_namespace, plural, "x")
        assert got["metadata"]["uid"] == made["metadata"]["uid"]


def test_events_are_one_resource_behind_both_apis(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core, events = client.CoreV1Api(kube_api), client.EventsV1Api(kube_api)
    regarding = {"kind": "GatiHandler", "name": "orders", "namespace": kube_namespace}
    events.create_namespaced_event(
        kube_namespace,
        {
            "metadata": {"name": "e1"},
            "regarding": regarding,
            "note": "rolled out",
            "reason": "Reconciled",
            "type": "Normal",
            "action": "Reconcile",
            "reportingController": "gati.dev/reconciler",
            "reportingInstance": "r-0",
            "eventTime": "2026-01-01T00:00:00.000000Z",
        },
    )
    seen = core.list_namespaced_event(
        kube_namespace, field_selector="involvedObject.name=orders,involvedObject.kind=GatiHandler"
    ).items
    assert [(e.metadata.name, e.message, e.reporting_component) for e in seen] == [
        ("e1", "rolled out", "gati.dev/reconciler")
    ]
    core.create_namespaced_event(
        kube_namespace,
        {
            "metadata": {"name": "e2"},
            "involvedObject": regarding,
            "message": "old style",
            "reason": "Tested",
            "type": "Warning",
            # events.k8s.io requires it; this client cannot read an event without it.
            "eventTime": "2026-01-01T00:00:01.000000Z",
        },
    )
    both = events.list_namespaced_event(kube_namespace, field_selector="regarding.name=orders")
    assert [(e.metadata.name, e.note) for e in both.items] == [
        ("e1", "rolled out"),
        ("e2", "old style"),
    ]


def test_system_namespaces_cannot_be_deleted(kube_api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).delete_namespace("default")
    assert err.value.status == 403


def test_builtin_validation_names_fields(kube_api: client.ApiClient, kube_namespace: str) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
        "spec": {"minReplicas": 3, "maxReplicas": 2},
    }
    with pytest.raises(ApiException) as err:  # sent raw: the typed client would refuse it
        client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
            "autoscaling", "v2", kube_namespace, "horizontalpodautoscalers", hpa
        )
    fields = {c["field"] for c in _status(err.value)["details"]["causes"]}  # type: ignore[index]
    assert fields == {"spec.scaleTargetRef", "spec.maxReplicas"}
    bad_deploy = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "y"}}, "spec": {"containers": []}},
        },
    }
    with pytest.raises(ApiException) as derr:
        client.AppsV1Api(kube_api).create_namespaced_deployment(kube_namespace, bad_deploy)
    fields = {c["field"] for c in _status(derr.value)["details"]["causes"]}  # type: ignore[index]
    assert fields == {"spec.template.metadata.labels", "spec.template.spec.containers"}


def test_deployment_pod_template_gets_server_defaults(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    from kubesim.samples import deployment

    made = client.AppsV1Api(kube_api).create_namespaced_deployment(
        kube_namespace, deployment("web", image="nginx")
    )
    container = made.spec.template.spec.containers[0]
    assert container.image_pull_policy == "Always"
    assert made.spec.template.spec.restart_policy == "Always"
    assert made.spec.strategy.rolling_update.max_surge == "25%"


def test_pages_of_a_list_show_one_consistent_snapshot(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    for name in ("a", "b", "c"):
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": name}})
    first = core.list_namespaced_config_map(kube_namespace, limit=1)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "aa"}})
    core.delete_namespaced_config_map("c", kube_namespace)
    core.patch_namespaced_config_map("b", kube_namespace, {"data": {"late": "yes"}})
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(kube_namespace, limit=1, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [i.metadata.name for i in page.items]
        assert all(not i.data for i in page.items)
        token = page.metadata._continue
    assert names == ["a", "b", "c"]


def test_exact_list_at_a_past_resource_version(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    made = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "a"}, "data": {"v": "1"}}
    )
    core.patch_namespaced_config_map("a", kube_namespace, {"data": {"v": "2"}})
    past = core.list_namespaced_config_map(
        kube_namespace,
        resource_version=made.metadata.resource_version,
        resource_version_match="Exact",
    )
    assert [i.data for i in past.items] == [{"v": "1"}]
    assert past.metadata.resource_version == made.metadata.resource_version
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(kube_namespace, resource_version_match="Exact")
    assert err.value.status == 400


@pytest.mark.parametrize(
    "labels",
    [{"app": "x" * 64}, {"bad key!": "v"}, {"example.com/" + "n" * 64: "v"}, {"a": "-lead"}],
)
def test_invalid_labels_are_422(
    kube_api: client.ApiClient, kube_namespace: str, labels: dict[str, str]
) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).create_namespaced_config_map(
            kube_namespace, {"metadata": {"name": "a", "labels": labels}}
        )
    assert err.value.status == 422
    assert _status(err.value)["details"]["causes"][0]["field"] == "metadata.labels"  # type: ignore[index]


def test_typed_client_reads_a_new_hpa(kube_api: client.ApiClient, kube_namespace: str) -> None:
    """A new HPA carries the status a real server gives it, which the typed model requires."""
    autoscaling = client.AutoscalingV2Api(kube_api)
    hpa = client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            max_replicas=3,
            scale_target_ref=client.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="web"
            ),
        ),
    )
    made = autoscaling.create_namespaced_horizontal_pod_autoscaler(kube_namespace, hpa)
    assert made.status.desired_replicas == 0
    read = autoscaling.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)
    assert read.spec.min_replicas == 1
    assert read.status.desired_replicas == 0
