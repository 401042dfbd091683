"""Patch semantics as the real API server applies them: merge, strategic merge and JSON patch."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gati_kubesim.patch import (
    PatchError,
    UnsupportedPatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
    strategic_merge_supported,
)

DEPLOY = "apps/v1/Deployment"

# --------------------------------------------------------------------------- merge patch

# RFC 7386 appendix A, plus the object-only rule the API server adds.
MERGE_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), MERGE_CASES)
def test_json_merge_patch_follows_rfc_7386(
    target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    before = copy.deepcopy((target, patch))
    assert json_merge_patch(target, patch) == expected
    assert (target, patch) == before


def test_json_merge_patch_rejects_non_object() -> None:
    with pytest.raises(PatchError, match="must be a JSON object, got array"):
        json_merge_patch({"a": 1}, [1])  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.sampled_from("abcd"), json_values, max_size=4)


@settings(max_examples=200)
@given(json_objects, json_objects)
def test_json_merge_patch_is_idempotent(target: dict[str, Any], patch: dict[str, Any]) -> None:
    once = json_merge_patch(target, patch)
    assert json_merge_patch(once, patch) == once


# --------------------------------------------------------------------- strategic merge


def deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
        "spec": {"replicas": 1, "template": {"spec": {"containers": containers}}, **spec},
    }


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


NGINX = {"name": "nginx", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]}
SIDE = {"name": "side", "image": "side:1"}


def template_patch(**pod_spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": pod_spec}}}


SMP_CONTAINER_CASES = [
    pytest.param(
        [NGINX],
        template_patch(containers=[{"name": "nginx", "image": "nginx:2"}]),
        [{**NGINX, "image": "nginx:2"}],
        id="merge-by-name-keeps-other-fields",
    ),
    pytest.param(
        [NGINX],
        template_patch(containers=[SIDE]),
        [SIDE, NGINX],
        id="new-element-goes-before-live-only-elements",
    ),
    pytest.param(
        [NGINX, SIDE],
        template_patch(containers=[{"name": "side", "$patch": "delete"}]),
        [NGINX],
        id="patch-delete-element",
    ),
    pytest.param(
        [NGINX, SIDE],
        template_patch(containers=[{"$patch": "replace"}, {"name": "only", "image": "x"}]),
        [{"name": "only", "image": "x"}],
        id="patch-replace-list",
    ),
    pytest.param(
        [NGINX],
        template_patch(containers=[{"name": "nginx", "env": [{"name": "B", "value": "2"}]}]),
        [{**NGINX, "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}],
        id="nested-env-merges-by-name",
    ),
    pytest.param(
        [NGINX],
        template_patch(containers=[{"name": "nginx", "args": ["x"]}]),
        [{**NGINX, "args": ["x"]}],
        id="args-without-strategy-replaced",
    ),
    pytest.param(
        [NGINX, SIDE],
        template_patch(
            **{
                "$setElementOrder/containers": [{"name": "side"}, {"name": "nginx"}],
                "containers": [{"name": "nginx", "image": "nginx:3"}],
            }
        ),
        [SIDE, {**NGINX, "image": "nginx:3"}],
        id="set-element-order",
    ),
    pytest.param(
        [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 90}]}],
        template_patch(containers=[{"name": "c", "ports": [{"containerPort": 90, "name": "x"}]}]),
        [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 90, "name": "x"}]}],
        id="ports-merge-by-container-port",
    ),
    pytest.param(
        [{"name": "c", "volumeMounts": [{"mountPath": "/a", "name": "v"}]}],
        template_patch(
            containers=[{"name": "c", "volumeMounts": [{"mountPath": "/a", "readOnly": True}]}]
        ),
        [{"name": "c", "volumeMounts": [{"mountPath": "/a", "name": "v", "readOnly": True}]}],
        id="volume-mounts-merge-by-mount-path",
    ),
]


@pytest.mark.parametrize(("live", "patch", "expected"), SMP_CONTAINER_CASES)
def test_strategic_merge_of_containers(
    live: list[dict[str, Any]], patch: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    target = deployment(copy.deepcopy(live))
    before = copy.deepcopy((target, patch))
    result = strategic_merge_patch(target, patch, DEPLOY)
    assert containers_of(result) == expected
    assert (target, patch) == before


ABSENT = object()

SMP_MAP_CASES = [
    pytest.param(
        {"metadata": {"labels": {"app": None, "tier": "web"}}},
        ("metadata", "labels"),
        {"tier": "web"},
        id="null-deletes-key",
    ),
    pytest.param(
        {"metadata": {"finalizers": ["c", "a"]}},
        ("metadata", "finalizers"),
        ["c", "a", "b"],
        id="primitive-merge-list-union",
    ),
    pytest.param(
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
        ("metadata", "finalizers"),
        ["b"],
        id="delete-from-primitive-list",
    ),
    pytest.param(
        {
            "metadata": {
                "$setElementOrder/finalizers": ["a"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
            }
        },
        ("metadata", "finalizers"),
        ["a"],
        id="kubectl-drops-a-finalizer",
    ),
    pytest.param(
        {"metadata": {"$setElementOrder/finalizers": ["a", "c", "b"], "finalizers": ["c"]}},
        ("metadata", "finalizers"),
        ["a", "c", "b"],
        id="set-element-order-of-scalars",
    ),
    pytest.param(
        {"metadata": {"labels": {"$patch": "replace", "x": "y"}}},
        ("metadata", "labels"),
        {"x": "y"},
        id="patch-replace-map",
    ),
    pytest.param(
        {"metadata": {"labels": {"$patch": "delete"}}},
        ("metadata", "labels"),
        {},
        id="patch-delete-map-leaves-empty-map",
    ),
    pytest.param(
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        ("spec", "strategy"),
        {"type": "Recreate"},
        id="retain-keys-clears-others",
    ),
    pytest.param(
        {"spec": {"paused": {"$patch": "delete"}}},
        ("spec", "paused"),
        ABSENT,
        id="directive-only-new-value-dropped",
    ),
    pytest.param(
        {"spec": {"selector": {"matchLabels": {"a": "b", "gone": None}}}},
        ("spec", "selector"),
        {"matchLabels": {"a": "b"}},
        id="nulls-in-new-values-discarded",
    ),
]


@pytest.mark.parametrize(("patch", "where", "expected"), SMP_MAP_CASES)
def test_strategic_merge_of_maps_and_directives(
    patch: dict[str, Any], where: tuple[str, str], expected: Any
) -> None:
    target = deployment([NGINX])
    target["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    result = strategic_merge_patch(target, patch, DEPLOY)
    assert result[where[0]].get(where[1], ABSENT) == expected


def test_service_ports_merge_by_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    result = strategic_merge_patch(
        svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, "v1/Service"
    )
    assert result["spec"]["ports"] == [
        {"port": 80, "name": "http"},
        {"port": 443, "name": "https", "targetPort": 8443},
    ]


def test_tolerations_are_replaced_like_the_real_server() -> None:
    target = deployment([NGINX])
    target["spec"]["template"]["spec"]["tolerations"] = [{"key": "a"}]
    result = strategic_merge_patch(target, template_patch(tolerations=[{"key": "b"}]), DEPLOY)
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]


def test_kubectl_three_way_patch_lands_like_on_a_real_server() -> None:
    """The patch kubectl apply computes when a container and an env var are dropped."""
    live = deployment(
        [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y"}]},
            {"name": "b", "image": "b:1"},
        ]
    )
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "a"}],
                    "containers": [
                        {
                            "$setElementOrder/env": [{"name": "X"}],
                            "env": [{"name": "Y", "$patch": "delete"}],
                            "image": "a:2",
                            "name": "a",
                        },
                        {"$patch": "delete", "name": "b"},
                    ],
                }
            }
        },
    }
    result = strategic_merge_patch(live, patch, DEPLOY)
    assert containers_of(result) == [
        {"name": "a", "image": "a:2", "env": [{"name": "X", "value": "1"}]}
    ]
    assert "$setElementOrder/containers" not in result["spec"]["template"]["spec"]


SMP_ERRORS = [
    ({"metadata": {"labels": {"$patch": "bogus"}}}, 'unknown "\\$patch" directive'),
    (template_patch(containers=[{"image": "x"}]), "does not contain declared merge key: name"),
    ({"spec": {"strategy": {"$retainKeys": "type"}}}, "must be a list of field names"),
    (
        {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}},
        'not in "\\$retainKeys"',
    ),
    (
        template_patch(
            **{
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"name": "other", "image": "x"}],
            }
        ),
        "does not match",
    ),
    (template_patch(containers=[{"name": "a"}, "b"]), "not all of one type"),
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list of values"),
]


@pytest.mark.parametrize(("patch", "message"), SMP_ERRORS)
def test_strategic_merge_bad_input_names_the_problem(patch: dict[str, Any], message: str) -> None:
    target = deployment([NGINX], strategy={"type": "RollingUpdate"})
    with pytest.raises(PatchError, match=message):
        strategic_merge_patch(target, patch, DEPLOY)


def test_strategic_merge_unsupported_for_custom_resources() -> None:
    assert strategic_merge_supported("v1/ConfigMap")
    assert not strategic_merge_supported("gati.dev/v1/GatiHandler")
    with pytest.raises(UnsupportedPatchError, match="merge-patch"):
        strategic_merge_patch({}, {}, "gati.dev/v1/GatiHandler")


@settings(max_examples=150)
@given(json_objects, json_objects)
def test_strategic_merge_equals_merge_patch_without_lists(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    """Without lists or directives a strategic merge patch is a plain merge patch."""

    def no_lists(value: Any) -> bool:
        if isinstance(value, dict):
            return all(no_lists(v) for v in value.values())
        return not isinstance(value, list)

    if no_lists(target) and no_lists(patch):
        assert strategic_merge_patch(target, patch, "v1/ConfigMap") == json_merge_patch(
            target, patch
        )


# ---------------------------------------------------------------------------- JSON patch

DOC = {"metadata": {"name": "x", "labels": {"a/b": "1"}}, "spec": {"items": [1, 2, 3]}}

JSON_PATCH_CASES = [
    ([{"op": "add", "path": "/spec/new", "value": 5}], ("spec", "new"), 5),
    ([{"op": "add", "path": "/spec/items/1", "value": 9}], ("spec", "items"), [1, 9, 2, 3]),
    ([{"op": "add", "path": "/spec/items/-", "value": 4}], ("spec", "items"), [1, 2, 3, 4]),
    ([{"op": "remove", "path": "/spec/items/0"}], ("spec", "items"), [2, 3]),
    (
        [{"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"}],
        ("metadata", "labels"),
        {"a/b": "2"},
    ),
    (
        [{"op": "move", "from": "/metadata/labels", "path": "/spec/labels"}],
        ("spec", "labels"),
        {"a/b": "1"},
    ),
    (
        [{"op": "copy", "from": "/spec/items/2", "path": "/spec/items/0"}],
        ("spec", "items"),
        [3, 1, 2, 3],
    ),
    (
        [{"op": "test", "path": "/metadata/name", "value": "x"}, {"op": "remove", "path": "/spec"}],
        ("metadata", "name"),
        "x",
    ),
]


@pytest.mark.parametrize(("ops", "where", "expected"), JSON_PATCH_CASES)
def test_json_patch_operations(ops: list[Any], where: tuple[str, str], expected: Any) -> None:
    before = copy.deepcopy(DOC)
    result = json_patch(DOC, ops)
    assert result[where[0]][where[1]] == expected
    assert before == DOC


JSON_PATCH_ERRORS = [
    (
        [{"op": "test", "path": "/metadata/name", "value": "y"}],
        'test at "/metadata/name"\\) failed',
    ),
    ([{"op": "remove", "path": "/spec/missing"}], "no such value"),
    ([{"op": "replace", "path": "/nope/x", "value": 1}], '"/nope" does not exist'),
    ([{"op": "add", "path": "/spec/items/7", "value": 1}], "out of range"),
    ([{"op": "add", "path": "/spec/items/01", "value": 1}], "not a valid array index"),
    ([{"op": "add", "path": "spec", "value": 1}], "must start with"),
    ([{"op": "add", "path": "/spec"}], 'missing "value"'),
    ([{"op": "jump", "path": "/spec"}], "unknown op 'jump'"),
    ([{"op": "move", "from": "/spec", "path": "/spec/x"}], "into its own child"),
    ([{"op": "replace", "path": "", "value": [1]}], "turned the object into array"),
    ([{"op": "add", "path": "/a~2", "value": 1}], '"~" not followed'),
    (["add"], "must be an object"),
]


@pytest.mark.parametrize(("ops", "message"), JSON_PATCH_ERRORS)
def test_json_patch_errors_name_the_operation(ops: list[Any], message: str) -> None:
    with pytest.raises(PatchError, match=message):
        json_patch(DOC, ops)


def test_json_patch_is_all_or_nothing() -> None:
    ops = [{"op": "remove", "path": "/spec"}, {"op": "test", "path": "/spec", "value": 1}]
    with pytest.raises(PatchError):
        json_patch(DOC, ops)
    assert "spec" in DOC


@settings(max_examples=200)
@given(json_objects, json_objects)
def test_json_patch_agrees_with_reference_diff(
    source: dict[str, Any], target: dict[str, Any]
) -> None:
    """Patches a reference implementation computes turn source into target here too."""
    jsonpatch = pytest.importorskip("jsonpatch")
    ops = jsonpatch.make_patch(source, target).patch
    assert json_patch(source, ops) == target


directive_keys = st.sampled_from(
    [
        "containers",
        "name",
        "image",
        "env",
        "finalizers",
        "$patch",
        "$retainKeys",
        "$setElementOrder/containers",
        "$setElementOrder/finalizers",
        "$deleteFromPrimitiveList/finalizers",
        "$deleteFromPrimitiveList/",
    ]
)
garbage = st.recursive(
    st.none() | st.booleans() | st.integers(0, 2) | st.sampled_from(["a", "delete", "replace"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(directive_keys, inner, max_size=3),
    max_leaves=15,
)


@settings(max_examples=300)
@given(garbage, garbage)
def test_garbage_patches_give_patch_errors_never_crashes(pod: Any, meta: Any) -> None:
    patch = {"metadata": meta, "spec": {"template": {"spec": pod}}}
    target = deployment([NGINX, SIDE])
    try:
        result = strategic_merge_patch(target, patch, DEPLOY)
    except PatchError:
        return
    assert isinstance(result, dict)


OPS = ["add", "remove", "replace", "move", "copy", "test"]
POINTERS = ["", "/spec", "/spec/items/0", "/spec/items/-", "/spec/items/9", "/x/y", "~"]
op_parts = st.sampled_from([*OPS, *POINTERS, "/metadata/labels/a~1b", 1, None])
ops_lists = st.lists(
    st.dictionaries(st.sampled_from(["op", "path", "value", "from"]), op_parts), max_size=4
)


@settings(max_examples=300)
@given(ops_lists)
def test_garbage_json_patches_give_patch_errors_never_crashes(ops: list[Any]) -> None:
    with contextlib.suppress(PatchError):
        assert isinstance(json_patch(DOC, ops), dict)
