"""Server-side apply and field ownership with the API server's observable behaviour."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gati_kubesim.fieldmanager import (
    ApplyConflict,
    ApplyError,
    managed_fields_of,
    record_update,
    server_side_apply,
)

DEPLOY = "apps/v1/Deployment"
T0, T1, T2, T3 = (f"2026-01-01T00:00:0{i}Z" for i in range(4))


def deployment(
    replicas: int | None = None,
    containers: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": containers or [{"name": "app", "image": "app:1"}]},
            },
        },
    }
    if replicas is not None:
        obj["spec"]["replicas"] = replicas
    if labels is not None:
        obj["metadata"]["labels"] = labels
    return obj


def owners(obj: dict[str, Any], field: str) -> set[str]:
    return {m for (m, _, _), fields in managed_fields_of(obj).items() if field in fields}


# --------------------------------------------------------- the scaler / reconciler story


def test_updater_takes_replicas_and_reapply_without_them_keeps_its_value() -> None:
    created = server_side_apply(None, deployment(replicas=2), "reconciler", False, DEPLOY, now=T0)
    assert owners(created, ".spec.replicas") == {"reconciler"}

    scaled = copy.deepcopy(created)
    scaled["spec"]["replicas"] = 5
    scaled = record_update(created, scaled, "scaler", now=T1)
    assert owners(scaled, ".spec.replicas") == {"scaler"}

    reapplied = server_side_apply(scaled, deployment(), "reconciler", False, DEPLOY, now=T2)
    assert reapplied["spec"]["replicas"] == 5
    assert reapplied["metadata"]["name"] == "web"
    assert reapplied["metadata"]["namespace"] == "default"
    assert owners(reapplied, ".spec.replicas") == {"scaler"}

    with pytest.raises(ApplyConflict) as info:
        server_side_apply(reapplied, deployment(replicas=3), "reconciler", False, DEPLOY)
    assert info.value.message == (
        'Apply failed with 1 conflict: conflict with "scaler" using apps/v1: .spec.replicas'
    )
    [conflict] = info.value.conflicts
    assert (conflict.manager, conflict.field) == ("scaler", ".spec.replicas")
    assert conflict.message == 'conflict with "scaler" using apps/v1'

    forced = server_side_apply(reapplied, deployment(replicas=3), "reconciler", True, DEPLOY)
    assert forced["spec"]["replicas"] == 3
    assert owners(forced, ".spec.replicas") == {"reconciler"}
    assert ("scaler", "Update", "") not in managed_fields_of(forced)


def test_applying_the_same_value_shares_ownership_without_conflict() -> None:
    created = server_side_apply(None, deployment(replicas=2), "a", False, DEPLOY, now=T0)
    shared = server_side_apply(created, deployment(replicas=2), "b", False, DEPLOY, now=T1)
    assert owners(shared, ".spec.replicas") == {"a", "b"}
    dropped = server_side_apply(shared, deployment(), "a", False, DEPLOY, now=T2)
    assert dropped["spec"]["replicas"] == 2
    assert owners(dropped, ".spec.replicas") == {"b"}


# --------------------------------------------------------------------- field removal


def test_dropped_fields_and_list_items_are_removed() -> None:
    two = [{"name": "app", "image": "app:1"}, {"name": "side", "image": "side:1"}]
    created = server_side_apply(
        None,
        deployment(replicas=1, containers=two, labels={"a": "1", "b": "2"}),
        "m",
        False,
        DEPLOY,
    )
    after = server_side_apply(created, deployment(labels={"a": "1"}), "m", False, DEPLOY, now=T1)
    assert after["metadata"]["labels"] == {"a": "1"}
    assert "replicas" not in after["spec"]
    assert after["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "app:1"}]
    assert after["metadata"]["name"] == "web"


def test_fields_set_by_updates_survive_an_appliers_removal() -> None:
    created = server_side_apply(None, deployment(), "m", False, DEPLOY, now=T0)
    edited = copy.deepcopy(created)
    edited["metadata"]["annotations"] = {"note": "x"}
    edited = record_update(created, edited, "kubectl-edit", now=T1)
    after = server_side_apply(edited, deployment(), "m", False, DEPLOY, now=T2)
    assert after["metadata"]["annotations"] == {"note": "x"}


def test_keyed_lists_merge_items_from_two_managers() -> None:
    created = server_side_apply(None, deployment(), "a", False, DEPLOY, now=T0)
    sidecar = deployment(containers=[{"name": "side", "image": "side:1"}])
    merged = server_side_apply(created, sidecar, "b", False, DEPLOY, now=T1)
    names = [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]]
    assert names == ["app", "side"]
    assert owners(merged, '.spec.template.spec.containers[name="side"].image') == {"b"}


def test_port_keys_include_the_defaulted_protocol() -> None:
    ports = [{"name": "app", "image": "x", "ports": [{"containerPort": 80}]}]
    created = server_side_apply(None, deployment(containers=ports), "a", False, DEPLOY, now=T0)
    fields = managed_fields_of(created)[("a", "Apply", "")]
    assert '.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"]' in (
        fields
    )


# ------------------------------------------------------------------- encoding details


def test_update_encoding_marks_newly_created_maps_like_the_api_server() -> None:
    new = deployment(replicas=1, labels={"app": "web"})
    new["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    created = record_update(None, new, "kubectl-create", now=T0)
    [entry] = created["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-create"
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == "apps/v1"
    assert entry["time"] == T0
    assert entry["fieldsType"] == "FieldsV1"
    fields = entry["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    spec = fields["f:spec"]
    assert "." not in spec
    assert spec["f:strategy"] == {
        "f:rollingUpdate": {".": {}, "f:maxSurge": {}},
        "f:type": {},
    }
    assert spec["f:selector"] == {}
    assert spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}'] == {
        ".": {},
        "f:image": {},
        "f:name": {},
    }


def test_apply_entries_come_first_and_noop_apply_keeps_time() -> None:
    created = record_update(None, deployment(), "creator", now=T0)
    applied = server_side_apply(created, deployment(replicas=1), "applier", False, DEPLOY, now=T1)
    assert [e["operation"] for e in applied["metadata"]["managedFields"]] == ["Apply", "Update"]
    again = server_side_apply(applied, deployment(replicas=1), "applier", False, DEPLOY, now=T3)
    assert again == applied


def test_first_apply_on_untracked_object_records_before_first_apply() -> None:
    live = deployment(replicas=1)
    applied = server_side_apply(live, deployment(replicas=1), "a", False, DEPLOY, now=T1)
    assert owners(applied, ".spec.replicas") == {"a", "before-first-apply"}


def test_update_without_changes_records_nothing() -> None:
    created = record_update(None, deployment(), "creator", now=T0)
    same = copy.deepcopy(created)
    same["metadata"]["resourceVersion"] = "7"
    assert (
        record_update(created, same, "other", now=T1)["metadata"]["managedFields"]
        == (created["metadata"]["managedFields"])
    )


def test_client_may_clear_managed_fields() -> None:
    created = record_update(None, deployment(), "creator", now=T0)
    cleared = copy.deepcopy(created)
    cleared["metadata"]["managedFields"] = [{}]
    assert "managedFields" not in record_update(created, cleared, "c", now=T1)["metadata"]


# --------------------------------------------------------------- subresources & resets


def test_status_is_reset_on_the_main_resource_and_owned_through_status() -> None:
    created = server_side_apply(None, deployment(), "m", False, DEPLOY, now=T0)
    with_status = deployment()
    with_status["status"] = {"replicas": 9}
    ignored = server_side_apply(
        created, with_status, "m", False, DEPLOY, reset_fields=["status"], now=T1
    )
    assert "status" not in ignored
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    status["status"] = {"replicas": 1}
    updated = server_side_apply(
        ignored, status, "ctl", False, DEPLOY, "status", reset_fields=["spec"], now=T2
    )
    assert updated["status"] == {"replicas": 1}
    assert updated["spec"] == created["spec"]
    entry = next(e for e in updated["metadata"]["managedFields"] if e["manager"] == "ctl")
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_an_apply_beside_a_status_writer_changes_the_spec_and_leaves_the_status_owned() -> None:
    created = server_side_apply(None, deployment(), "op", False, DEPLOY, now=T0)
    with_status = copy.deepcopy(created)
    with_status["status"] = {"replicas": 1, "conditions": [{"type": "Available"}]}
    written = record_update(created, with_status, "ctl", "status", gvk=DEPLOY, now=T1)
    changed = deployment(containers=[{"name": "app", "image": "app:2"}])
    applied = server_side_apply(
        written, changed, "op", False, DEPLOY, reset_fields=["status"], now=T2
    )
    assert applied["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "app:2"}]
    assert applied["status"] == with_status["status"]
    assert managed_fields_of(applied)[("ctl", "Update", "status")] == {
        ".status.replicas",
        ".status.conditions",
        '.status.conditions[type="Available"]',
        '.status.conditions[type="Available"].type',
    }
    # A status writer that also owns a spec field still contests it.
    scaled = copy.deepcopy(applied)
    scaled["spec"]["replicas"] = 3
    scaled = record_update(applied, scaled, "ctl", gvk=DEPLOY, now=T3)
    with pytest.raises(ApplyConflict):
        server_side_apply(
            scaled, deployment(replicas=1), "op", False, DEPLOY, reset_fields=["status"]
        )


def test_conflict_message_lists_every_manager() -> None:
    live = server_side_apply(None, deployment(replicas=1, labels={"x": "1"}), "a", False, DEPLOY)
    with pytest.raises(ApplyConflict) as info:
        server_side_apply(live, deployment(replicas=2, labels={"x": "2"}), "b", False, DEPLOY)
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "a":\n- .metadata.labels.x\n- .spec.replicas'
    )


# --------------------------------------------------------------------- custom resources

CR_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "routes": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["path"],
                    "items": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
                "tags": {
                    "type": "array",
                    "x-kubernetes-list-type": "set",
                    "items": {"type": "string"},
                },
                "args": {"type": "array", "items": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "object"}},
            },
        }
    },
}
GVK = "gati.dev/v1/GatiHandler"


def handler(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1",
        "kind": "GatiHandler",
        "metadata": {"name": "h"},
        "spec": spec,
    }


def test_custom_resource_lists_follow_the_schema_markers() -> None:
    first = handler(routes=[{"path": "/a", "to": "x"}], tags=["t1"], args=["--a"])
    live = server_side_apply(None, first, "a", False, GVK, schema=CR_SCHEMA, now=T0)
    second = handler(routes=[{"path": "/b"}], tags=["t2"], args=["--b"])
    both = server_side_apply(live, second, "b", True, GVK, schema=CR_SCHEMA, now=T1)
    assert [r["path"] for r in both["spec"]["routes"]] == ["/a", "/b"]
    assert both["spec"]["tags"] == ["t1", "t2"]
    assert both["spec"]["args"] == ["--b"]
    fields = managed_fields_of(both)
    assert '.spec.routes[path="/a"].to' in fields[("a", "Apply", "")]
    assert '.spec.tags[="t2"]' in fields[("b", "Apply", "")]
    assert ".spec.args" not in fields.get(("a", "Apply", ""), set())


def test_map_entries_under_additional_properties_are_owned_members() -> None:
    live = server_side_apply(None, handler(env={"A": {"v": 1}}), "a", False, GVK, schema=CR_SCHEMA)
    assert ".spec.env.A" in managed_fields_of(live)[("a", "Apply", "")]


# -------------------------------------------------------------------------- bad input

BAD_APPLIES = [
    (deployment(containers=[{"image": "x"}]), 'omits key field "name"'),
    (
        deployment(containers=[{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]),
        'duplicate entries for key \\[name="a"\\]',
    ),
    (
        {**deployment(), "metadata": {"name": "web", "managedFields": [{"manager": "x"}]}},
        "must be nil",
    ),
]


@pytest.mark.parametrize(("applied", "message"), BAD_APPLIES)
def test_bad_apply_names_the_field(applied: dict[str, Any], message: str) -> None:
    with pytest.raises(ApplyError, match=message):
        server_side_apply(None, applied, "m", False, DEPLOY)


def test_apply_needs_a_manager() -> None:
    with pytest.raises(ApplyError, match="fieldManager is required"):
        server_side_apply(None, deployment(), "", False, DEPLOY)


def test_corrupt_stored_managed_fields_do_not_break_writes() -> None:
    live = deployment(replicas=1)
    live["metadata"]["managedFields"] = [{"manager": "x", "fieldsV1": {"bogus": {}}}]
    result = server_side_apply(live, deployment(replicas=2), "m", True, DEPLOY, now=T1)
    assert result["spec"]["replicas"] == 2
    assert owners(result, ".spec.replicas") == {"m"}


def test_inputs_are_never_mutated() -> None:
    live = server_side_apply(None, deployment(replicas=1, labels={"a": "b"}), "a", False, DEPLOY)
    applied = deployment()
    before = copy.deepcopy((live, applied))
    result = server_side_apply(live, applied, "a", False, DEPLOY, reset_fields=["metadata.labels"])
    updated = record_update(live, applied, "u", reset_fields=["spec.template"])
    assert (live, applied) == before
    # An apply's result goes through admission, which defaults in place: it shares nothing.
    result["metadata"]["name"] = "changed"
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    result["spec"]["selector"]["matchLabels"]["app"] = "changed"
    assert (live, applied) == before
    # An update's result is stored as it is: only its top level and metadata are its own.
    updated["metadata"]["name"] = "changed"
    updated["kind"] = "changed"
    assert (live, applied) == before


# ------------------------------------------------------------------------- properties

label_maps = st.dictionaries(st.sampled_from("abcde"), st.sampled_from(["1", "2"]), max_size=4)
# Non-empty: an applied empty list owns nothing, so upstream (and kubesim) drop it once.
env_lists = st.lists(st.sampled_from("XYZ"), unique=True, min_size=1, max_size=3).map(
    lambda names: [{"name": n, "value": n.lower()} for n in names]
)


@settings(max_examples=100)
@given(label_maps, label_maps, env_lists, env_lists)
def test_a_sole_applier_always_gets_exactly_what_it_applied(
    first: dict[str, str], second: dict[str, str], env1: list[Any], env2: list[Any]
) -> None:
    def config(labels: dict[str, str], env: list[Any]) -> dict[str, Any]:
        return deployment(labels=labels, containers=[{"name": "app", "image": "x", "env": env}])

    live = server_side_apply(None, config(first, env1), "m", False, DEPLOY, now=T0)
    result = server_side_apply(live, config(second, env2), "m", False, DEPLOY, now=T1)
    assert result["metadata"].get("labels", {}) == second
    assert result["spec"]["template"]["spec"]["containers"][0].get("env", []) == env2
    assert server_side_apply(result, config(second, env2), "m", False, DEPLOY, now=T2) == result


@settings(max_examples=100)
@given(label_maps, label_maps)
def test_updates_never_lose_to_an_unforced_apply(
    applied: dict[str, str], edited: dict[str, str]
) -> None:
    live = server_side_apply(None, deployment(labels=applied), "a", False, DEPLOY, now=T0)
    changed = copy.deepcopy(live)
    changed["metadata"]["labels"] = {**applied, **edited}
    changed = record_update(live, changed, "editor", now=T1)
    contested = {
        f".metadata.labels.{k}" for k, v in edited.items() if k in applied and applied[k] != v
    }
    if contested:
        with pytest.raises(ApplyConflict) as info:
            server_side_apply(changed, deployment(labels=applied), "a", False, DEPLOY, now=T2)
        assert {c.field for c in info.value.conflicts} == contested
    else:
        result = server_side_apply(changed, deployment(labels=applied), "a", False, DEPLOY, now=T2)
        assert result["metadata"].get("labels", {}) == {**applied, **edited}


junk = st.recursive(
    st.none() | st.booleans() | st.integers(0, 3) | st.sampled_from(["a", "b"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["name", "image", "env", "ports", "containerPort"]), inner
        )
    ),
    max_leaves=15,
)


@settings(max_examples=150)
@given(junk, junk, st.booleans())
def test_arbitrary_bodies_give_an_answer_never_a_crash(
    first: Any, second: Any, force: bool
) -> None:
    def body(containers: Any) -> dict[str, Any]:
        obj = deployment()
        obj["spec"]["template"]["spec"]["containers"] = containers
        return obj

    live = record_update(None, body(first), "writer", now=T0)
    try:
        result = server_side_apply(live, body(second), "applier", force, DEPLOY, now=T1)
    except (ApplyError, ApplyConflict):
        return
    assert result["metadata"]["name"] == "web"
    record_update(result, body(first), "writer", now=T2)


# Keys that reach zero structs, keyed and set lists, atomic maps and server-set fields.
shaped = st.recursive(
    st.none() | st.booleans() | st.integers(0, 3) | st.sampled_from(["a", "TCP"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "strategy",
                    "template",
                    "metadata",
                    "containers",
                    "name",
                    "ports",
                    "containerPort",
                    "protocol",
                    "labels",
                    "finalizers",
                    "selector",
                    "status",
                    "loadBalancer",
                    "data",
                    "uid",
                    "items",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)
WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}
KINDS = [
    ("apps/v1", "Deployment", None),
    ("v1", "Service", None),
    ("v1", "ConfigMap", None),
    ("v1", "Namespace", None),
    ("example.dev/v1", "Widget", WIDGET_SCHEMA),
    ("example.dev/v1", "Schemaless", None),
]


@settings(max_examples=200)
@given(
    st.sampled_from(KINDS),
    st.dictionaries(st.sampled_from(["labels", "finalizers", "generation", "uid"]), shaped),
    st.dictionaries(st.sampled_from(["spec", "status", "data", "items"]), shaped),
)
def test_a_create_owns_what_a_diff_against_nothing_finds(
    kind: tuple[str, str, dict[str, Any] | None], meta: dict[str, Any], rest: dict[str, Any]
) -> None:
    api_version, kind_name, schema = kind
    obj = {
        "apiVersion": api_version,
        "kind": kind_name,
        "metadata": {"name": "x", "namespace": "ns", **meta},
        **rest,
    }
    before = copy.deepcopy(obj)
    gvk = f"{api_version}/{kind_name}"
    created = record_update(None, obj, "maker", gvk=gvk, schema=schema, now=T0)
    # An empty old object takes the general path: the diff, the encoder, the copy.
    general = record_update({}, obj, "maker", gvk=gvk, schema=schema, now=T0)
    assert json.dumps(created) == json.dumps(general)  # the same fields in the same order
    assert obj == before


@settings(max_examples=300)
@given(
    st.sampled_from(KINDS),
    st.dictionaries(st.sampled_from(["spec", "status", "data", "items"]), shaped),
    st.dictionaries(st.sampled_from(["spec", "status", "data", "items"]), shaped),
    st.dictionaries(st.sampled_from(["spec", "status", "template", "strategy"]), shaped),
)
def test_what_a_write_shares_with_the_old_object_does_not_change_what_it_owns(
    kind: tuple[str, str, dict[str, Any] | None],
    before: dict[str, Any],
    written: dict[str, Any],
    nested: dict[str, Any],
) -> None:
    # The diff passes over subtrees both sides hold as one object, and over Go's zero
    # structs where both share them: the same objects written as private copies must
    # give byte-identical managedFields.
    api_version, kind_name, schema = kind
    gvk = f"{api_version}/{kind_name}"
    old_spec = {**nested, "template": {"spec": nested}}
    base = {"apiVersion": api_version, "kind": kind_name, "metadata": {"name": "x"}}
    old = record_update(None, {**base, **before, "spec": old_spec}, "a", gvk=gvk, schema=schema)
    new = {**old, **written}
    if "spec" not in written and isinstance(old.get("spec"), dict):
        new["spec"] = {**old["spec"], "strategy": nested}  # shares the template
    shared = record_update(old, new, "b", "status", gvk=gvk, schema=schema, now=T1)
    copied = record_update(
        copy.deepcopy(old), copy.deepcopy(new), "b", "status", gvk=gvk, schema=schema, now=T1
    )
    assert json.dumps(shared) == json.dumps(copied)


# ------------------------------------------------------------------- managedFields cap


def test_more_than_ten_updaters_fold_the_oldest_into_ancient_changes() -> None:
    times = [f"2026-01-01T00:{m:02d}:00Z" for m in range(14)]
    live = record_update(None, deployment(labels={"by": "creator"}), "creator", now=times[0])
    live = server_side_apply(live, deployment(replicas=1), "applier", False, DEPLOY, now=times[1])
    for n in range(1, 12):
        edited = copy.deepcopy(live)
        edited["metadata"]["labels"][f"l{n}"] = "x"
        live = record_update(live, edited, f"editor-{n}", now=times[n + 1])
    entries = live["metadata"]["managedFields"]
    updaters = [e for e in entries if e["operation"] == "Update"]
    assert len(updaters) == 10
    assert [e["manager"] for e in entries if e["operation"] == "Apply"] == ["applier"]
    # creator, editor-1 and editor-2 were the oldest: one bucket holds all their fields.
    [bucket] = [e for e in updaters if e["manager"] == "ancient-changes"]
    assert bucket["apiVersion"] == "apps/v1"
    assert bucket["time"] == times[3]
    assert {m for m, _, _ in managed_fields_of(live)} == {
        "ancient-changes",
        "applier",
        *(f"editor-{n}" for n in range(3, 12)),
    }
    assert owners(live, ".metadata.labels.by") == {"ancient-changes"}
    assert owners(live, ".metadata.labels.l2") == {"ancient-changes"}
    assert owners(live, ".metadata.labels.l3") == {"editor-3"}

    # One more updater folds the next oldest into the bucket that is already there.
    edited = copy.deepcopy(live)
    edited["metadata"]["labels"]["l12"] = "x"
    live = record_update(live, edited, "editor-12", now=times[13])
    updaters = [e for e in live["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert len(updaters) == 10
    assert owners(live, ".metadata.labels.l3") == {"ancient-changes"}
    assert owners(live, ".metadata.labels.by") == {"ancient-changes"}


def test_objects_owning_the_same_fields_read_alike_and_change_apart() -> None:
    """Two objects whose writers own the same paths may share one encoding of them; a later
    write to one must leave the other's managedFields as they were."""

    def scaled(name: str, replicas: int) -> dict[str, Any]:
        created = record_update(None, {**deployment(), "metadata": {"name": name}}, "c", now=T0)
        return record_update(
            created,
            {**created, "spec": {**created["spec"], "replicas": replicas}},
            "scaler",
            now=T1,
        )

    first, second = scaled("a", 2), scaled("b", 3)
    before = json.dumps(second["metadata"]["managedFields"])
    assert first["metadata"]["managedFields"] == second["metadata"]["managedFields"]
    rescaled = record_update(
        first, {**first, "spec": {**first["spec"], "replicas": 4}}, "hpa", now=T2
    )
    assert owners(rescaled, ".spec.replicas") == {"hpa"}
    assert json.dumps(second["metadata"]["managedFields"]) == before
    assert owners(second, ".spec.replicas") == {"scaler"}


# ------------------------------------------------------------- keyed lists in the diff


def _status_write(before: list[Any], after: list[Any]) -> dict[str, set[str]]:
    """Who owns what after "ctl" writes conditions `after` over `before` ("maker"'s)."""
    old = record_update(None, {**deployment(), "status": {"conditions": before}}, "maker", now=T0)
    new = {**old, "status": {"conditions": after}}
    written = record_update(old, new, "ctl", "status", gvk=DEPLOY, now=T1)
    return {m: fields for (m, _, _), fields in managed_fields_of(written).items()}


def test_a_status_write_takes_only_the_conditions_it_changed() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Up"}
    before = [ready, {"type": "Degraded", "status": "False"}, {"type": "Busy", "status": "1"}]
    after = [dict(ready), {"type": "Degraded", "status": "True"}, {"type": "Busy", "status": 1}]
    assert _status_write(before, after)["ctl"] == {
        '.status.conditions[type="Degraded"].status',
        '.status.conditions[type="Busy"].status',  # a number is not the string it spells
    }


def test_a_first_status_write_owns_every_field_it_adds() -> None:
    old = record_update(None, deployment(), "maker", now=T0)
    status = {
        "replicas": 1,
        "observedGeneration": None,  # a null is a leaf too
        "conditions": [{"type": "Ready", "status": "True", "reason": ""}],
    }
    written = record_update(old, {**old, "status": status}, "ctl", "status", gvk=DEPLOY, now=T1)
    assert managed_fields_of(written)[("ctl", "Update", "status")] == {
        ".status.replicas",
        ".status.observedGeneration",
        ".status.conditions",
        '.status.conditions[type="Ready"]',
        '.status.conditions[type="Ready"].type',
        '.status.conditions[type="Ready"].status',
        '.status.conditions[type="Ready"].reason',
    }


@pytest.mark.parametrize(
    ("before", "after", "taken"),
    [
        # The same key twice: the second item is known by its position.
        (
            [{"type": "A", "status": "x"}, {"type": "A", "status": "x"}],
            [{"type": "A", "status": "x"}, {"type": "A", "status": "y"}],
            {".status.conditions[1].status"},
        ),
        # Keys in other places pair by key, not by position.
        (
            [{"type": "A", "status": "x"}, {"type": "B", "status": "x"}],
            [{"type": "B", "status": "y"}, {"type": "A", "status": "x"}],
            {'.status.conditions[type="B"].status'},
        ),
        # A key that is not a string is still a key.
        (
            [{"type": 1, "status": "x"}, {"type": "1", "status": "x"}],
            [{"type": 1, "status": "y"}, {"type": "1", "status": "x"}],
            {".status.conditions[type=1].status"},
        ),
    ],
)
def test_keyed_items_pair_as_the_server_pairs_them(
    before: list[Any], after: list[Any], taken: set[str]
) -> None:
    assert _status_write(before, after)["ctl"] == taken


def test_an_apply_that_creates_encodes_its_fields_in_the_servers_order() -> None:
    applied = {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "status": {"replicas": 3},  # reset on the main resource: nobody owns it
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "b", "ports": [{"containerPort": 80}]},
                        {"name": "a", "image": "x"},
                    ]
                },
            },
            "replicas": 2,
            "strategy": {},
        },
        "metadata": {
            "uid": "u",
            "finalizers": ["z", "y"],
            "labels": {"app": "web"},
            "name": "web",
        },
    }
    created = server_side_apply(None, applied, "op", False, DEPLOY, reset_fields=["status"], now=T0)
    assert "status" not in created
    assert json.dumps(created["metadata"]["managedFields"][0]["fieldsV1"]) == json.dumps(
        {
            "f:metadata": {
                "f:finalizers": {'v:"y"': {}, 'v:"z"': {}},
                "f:labels": {"f:app": {}},
            },
            "f:spec": {
                "f:replicas": {},
                "f:strategy": {},
                "f:template": {
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"a"}': {".": {}, "f:image": {}, "f:name": {}},
                            'k:{"name":"b"}': {
                                ".": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {
                                        ".": {},
                                        "f:containerPort": {},
                                    }
                                },
                            },
                        }
                    }
                },
            },
        }
    )


def test_an_apply_that_creates_names_its_first_bad_list_in_body_order() -> None:
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}},
        "metadata": {"name": "web", "finalizers": [{"not": "a scalar"}]},
    }
    with pytest.raises(ApplyError, match="containers"):
        server_side_apply(None, applied, "op", False, DEPLOY, now=T0)
    # A reset field is walked for its errors too, in its place.
    applied = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    applied["status"] = {"conditions": [{"type": "A"}, {"type": "A"}]}
    applied["spec"] = {"template": {"spec": {"containers": [{"image": "x"}]}}}
    with pytest.raises(ApplyError, match="conditions"):
        server_side_apply(None, applied, "op", False, DEPLOY, reset_fields=["status"], now=T0)
