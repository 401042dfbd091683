"""Label and field selector grammar, table-driven, plus a property: parse accepts what it prints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_kubesim.selectors import (
    SelectorError,
    build_matcher,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
    valid_label_key,
)

LABELS = {"app": "web", "tier": "front", "example.com/team": "a"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("app in (web,db)", True),
        ("app notin (web)", False),
        ("missing notin (x)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("example.com/team=a,app=web", True),
        ("app=web,tier=back", False),
        (" app = web , tier ", True),
    ],
)
def test_label_selector_semantics(selector: str, matches: bool) -> None:
    assert labels_match(parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize("bad", ["app in ()", "app=bad value", "-app=x", "app in (a,b", "a=b=c"])
def test_malformed_label_selectors_are_refused(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_field_selectors_only_on_supported_fields() -> None:
    reqs = parse_field_selector("metadata.name=a,type!=Opaque", ("type",))
    assert [(r.path, r.value, r.negate) for r in reqs] == [
        ("metadata.name", "a", False),
        ("type", "Opaque", True),
    ]
    with pytest.raises(SelectorError, match="field label not supported"):
        parse_field_selector("spec.x=1", ())


def test_matcher_combines_labels_and_fields() -> None:
    match = build_matcher("app=web", "metadata.namespace=ns", ())
    assert match is not None
    assert match({"metadata": {"namespace": "ns", "labels": {"app": "web"}}})
    assert not match({"metadata": {"namespace": "other", "labels": {"app": "web"}}})
    assert build_matcher(None, "", ()) is None


def test_label_selector_objects_render_as_strings() -> None:
    sel = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "c", "operator": "In", "values": ["y", "x"]},
            {"key": "d", "operator": "DoesNotExist"},
        ],
    }
    assert selector_from_label_selector(sel) == "a=1,b=2,c in (x,y),!d"


_names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)


@given(st.dictionaries(_names, _names, max_size=4))
def test_rendered_match_labels_select_their_own_labels(labels: dict[str, str]) -> None:
    rendered = selector_from_label_selector({"matchLabels": labels})
    assert labels_match(parse_label_selector(rendered), labels)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        ("gati.dev/owner", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("example.com/" + "a" * 64, False),
        ("Example.com/app", False),
        ("-app", False),
        ("a/b/c", False),
        ("", False),
    ],
)
def test_label_keys_keep_their_answer_when_asked_again(key: str, valid: bool) -> None:
    # Valid keys are remembered: the second answer comes from that memory.
    assert [valid_label_key(key), valid_label_key(key)] == [valid, valid]


_key_chars = st.text(alphabet="aZ09-_./", max_size=12)


@given(st.lists(_key_chars, min_size=1, max_size=6))
def test_a_remembered_key_answers_as_the_rule_did(keys: list[str]) -> None:
    first = [valid_label_key(k) for k in keys]
    assert [valid_label_key(k) for k in reversed(keys)] == first[::-1]
