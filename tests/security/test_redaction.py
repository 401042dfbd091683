"""Field paths masked before publishing: parsed strictly, applied without touching the input."""

from __future__ import annotations

import copy
import json
import re
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_runtime.redaction import (
    LAST_APPLIED,
    REDACTED,
    FieldPath,
    Redaction,
    RedactionError,
)
from gati_runtime.settings import Settings, SettingsError

SECRET = "hunter2-planted"


def _handler() -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {
            "name": "users",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "7",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": f'{{"env":"{SECRET}"}}',
                "team": "core",
            },
        },
        "spec": {
            "env": {
                "DB_PASSWORD": SECRET,
                "MODE": {"valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
            },
            "containers": [{"env": [{"name": "A", "value": SECRET}, {"name": "B"}]}],
        },
    }


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("spec.env", ("spec", "env")),
        ("spec.env[*]", ("spec", "env", "*")),
        ("spec.containers[*].env[0].value", ("spec", "containers", "*", "env", "0", "value")),
        ('metadata.annotations["a.b/c"]', ("metadata", "annotations", "a.b/c")),
        ("metadata.annotations['a.b/c']", ("metadata", "annotations", "a.b/c")),
        ("metadata.annotations[a.b/c]", ("metadata", "annotations", "a.b/c")),
        (" spec.*.value ", ("spec", "*", "value")),
    ],
)
def test_paths_parse_as_jsonpath_users_write_them(text: str, segments: tuple[str, ...]) -> None:
    assert FieldPath.parse(text).segments == segments


@pytest.mark.parametrize("text", ["", ".spec", "spec..env", "spec.env[", 'spec["a]'])
def test_unreadable_paths_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(RedactionError, match=re.escape("spec.env[*]")):
        FieldPath.parse(text)


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("kind", "kind"),
        ("metadata", "metadata.name"),
        ("metadata[*]", "metadata.name"),
        ("metadata.uid", "metadata.uid"),
        ("metadata.ownerReferences[*].uid", None),
        ("*", "kind"),
    ],
)
def test_paths_hiding_identity_are_refused(text: str, hidden: str | None) -> None:
    if hidden is None:  # below ownerReferences it is allowed: the list itself stays
        FieldPath.parse(text)
        return
    with pytest.raises(RedactionError, match=f"would hide {hidden}"):
        FieldPath.parse(text)


def test_masks_matched_values_and_leaves_the_input_alone() -> None:
    obj = _handler()
    before = copy.deepcopy(obj)
    redaction = Redaction.parse(f"{LAST_APPLIED}, spec.env[*], spec.containers[*].env[*].value")
    out, paths = redaction.apply(obj)
    assert obj == before
    assert paths == (LAST_APPLIED, "spec.env[*]", "spec.containers[*].env[*].value")
    assert out["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": REDACTED,
        "team": "core",
    }
    assert out["spec"]["env"] == {"DB_PASSWORD": REDACTED, "MODE": REDACTED}
    assert out["spec"]["containers"][0]["env"] == [{"name": "A", "value": REDACTED}, {"name": "B"}]
    assert SECRET not in repr(out)
    assert out["metadata"]["uid"] == "u-1"


def test_no_match_returns_the_same_object_without_copying() -> None:
    obj = {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}}
    out = Redaction.default().apply(obj)
    assert out.obj is obj
    assert not out.paths
    assert Redaction.parse("spec.template.spec.containers[*].env[*].value").apply(obj).obj is obj


def test_only_containers_on_a_masked_path_are_new() -> None:
    obj = _handler()
    out, paths = Redaction.parse("spec.env[DB_PASSWORD], spec.nothing").apply(obj)
    assert paths == ("spec.env[DB_PASSWORD]",)
    assert out["metadata"] is obj["metadata"]
    assert out["spec"]["containers"] is obj["spec"]["containers"]
    assert out["spec"]["env"]["MODE"] is obj["spec"]["env"]["MODE"]


def test_list_index_out_of_range_and_scalars_are_left_alone() -> None:
    obj = {"spec": {"items": ["a"], "n": 3}}
    out = Redaction.parse("spec.items[4], spec.n.deeper, spec.items.x").apply(obj)
    assert out.obj is obj
    assert not out.paths


class _Items(list[Any]):
    """A list that is no plain list, as a client library might hand over."""


def _unplain(node: Any) -> Any:
    """`node` rebuilt of read-only mappings and list subclasses: the general path of masking."""
    if isinstance(node, dict):
        return MappingProxyType({key: _unplain(value) for key, value in node.items()})
    if isinstance(node, list):
        return _Items(_unplain(value) for value in node)
    return node


def test_any_mapping_and_list_mask_as_plain_dicts_and_lists_do() -> None:
    redaction = Redaction.parse(f"{LAST_APPLIED}, spec.env[*], spec.containers[*].env[*].value")
    plain = redaction.apply(_handler()).obj
    general = redaction.apply(_unplain(_handler())).obj
    assert json.loads(json.dumps(plain)) == json.loads(json.dumps(general, default=dict))
    assert isinstance(general["spec"]["containers"][0]["env"][1], MappingProxyType)  # untouched


def test_redacting_twice_changes_nothing_more() -> None:
    redaction = Redaction.parse("spec.env[*]")
    once = redaction.apply(_handler()).obj
    again = redaction.apply(once)
    assert again.obj is once
    assert not again.paths


@given(
    st.recursive(
        st.text(max_size=5) | st.integers(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_any_json_document_survives_every_path(document: Any) -> None:
    obj = {"metadata": {"name": "x"}, "spec": document}
    before = copy.deepcopy(obj)
    out = Redaction.parse("spec[*][*], spec.a[0].b, spec[*]").apply(obj).obj
    assert obj == before
    assert out["metadata"] == {"name": "x"}


def test_setting_defaults_to_the_last_applied_annotation_and_can_be_turned_off() -> None:
    assert Settings.load(environ={}).redact_fields == Redaction.default()
    assert Settings.load(environ={"GATI_REDACT_FIELDS": "none"}).redact_fields.paths == ()
    parsed = Settings.load(
        environ={"GATI_REDACT_FIELDS": 'spec.env[*],metadata.annotations["x,y"]'}
    )
    assert [p.segments[-1] for p in parsed.redact_fields.paths] == ["*", "x,y"]


def test_a_bad_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"GATI_REDACT_FIELDS.*would hide metadata\.name"):
        Settings.load(environ={"GATI_REDACT_FIELDS": "spec.env, metadata"})
