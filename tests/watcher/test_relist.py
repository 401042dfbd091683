"""The relist rule, table-driven and property-checked: publish exactly what makes the stream's
last event per subject agree with the list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.events import ChangeEvent, ChangeType
from gati_watcher.relist import Change, redecide, relist_changes

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def obj(name: str, uid: str = "u1", rv: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "gati.dev/v1alpha1",
        "kind": "GatiHandler",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv},
    }


def recorded(change: ChangeType, o: dict[str, Any]) -> ChangeEvent:
    return ChangeEvent.of(change, o, source="t", observed_at=NOW)


def test_unchanged_objects_publish_nothing() -> None:
    listed = {"s": obj("a", rv="5")}
    assert relist_changes(listed, {"s": recorded(ChangeType.MODIFIED, obj("a", rv="5"))}) == []


def test_new_changed_and_vanished_objects() -> None:
    gone = obj("gone", uid="u9", rv="3")
    listed = {"new": obj("new", uid="u2"), "changed": obj("changed", rv="7")}
    last = {
        "changed": recorded(ChangeType.ADDED, obj("changed", rv="6")),
        "gone": recorded(ChangeType.MODIFIED, gone),
    }
    assert relist_changes(listed, last) == [
        Change(ChangeType.ADDED, "new", listed["new"]),
        Change(ChangeType.MODIFIED, "changed", listed["changed"]),
        Change(ChangeType.DELETED, "gone", gone),
    ]


def test_a_recorded_deletion_stays_deleted_and_a_comeback_is_added() -> None:
    deleted = recorded(ChangeType.DELETED, obj("a", rv="4"))
    assert relist_changes({}, {"s": deleted}) == []
    again = obj("a", uid="u2", rv="9")
    assert relist_changes({"s": again}, {"s": deleted}) == [Change(ChangeType.ADDED, "s", again)]


def test_a_recreated_object_first_deletes_its_predecessor() -> None:
    old, new = obj("a", uid="old", rv="3"), obj("a", uid="new", rv="8")
    assert relist_changes({"s": new}, {"s": recorded(ChangeType.MODIFIED, old)}) == [
        Change(ChangeType.DELETED, "s", old),
        Change(ChangeType.ADDED, "s", new),
    ]


STATES = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.tuples(st.sampled_from(["u1", "u2"]), st.sampled_from(["1", "2", "3"])),
)


@given(cluster=STATES, stream=STATES, deleted=st.sets(st.sampled_from(["a", "b", "c", "d"])))
def test_applying_the_changes_leaves_no_drift(
    cluster: dict[str, tuple[str, str]],
    stream: dict[str, tuple[str, str]],
    deleted: set[str],
) -> None:
    listed = {name: obj(name, uid, rv) for name, (uid, rv) in cluster.items()}
    last = {
        name: recorded(
            ChangeType.DELETED if name in deleted else ChangeType.MODIFIED, obj(name, *s)
        )
        for name, s in stream.items()
    }
    for change in relist_changes(listed, last):
        last[change.subject] = recorded(change.type, dict(change.obj))
    assert relist_changes(listed, last) == []


def test_after_a_conflict_a_change_since_the_list_is_left_to_the_watch() -> None:
    listed, newer = obj("a", rv="1"), obj("a", rv="2")
    last = recorded(ChangeType.MODIFIED, newer)
    assert redecide("s", listed, last, current=newer) == []
    assert redecide("s", listed, last, current=obj("a", rv="3")) == []
    assert redecide("s", listed, last, current=None) == []
    assert redecide("s", None, last, current=obj("a", uid="u2")) == []


def test_after_a_conflict_an_unchanged_object_stands_against_an_older_record() -> None:
    listed = obj("a", rv="5")
    older = recorded(ChangeType.ADDED, obj("a", rv="4"))
    assert redecide("s", listed, older, current=obj("a", rv="5")) == [
        Change(ChangeType.MODIFIED, "s", listed)
    ]
    assert redecide("s", listed, recorded(ChangeType.MODIFIED, listed), current=listed) == []
    assert redecide("s", listed, None, current=listed) == [Change(ChangeType.ADDED, "s", listed)]
    gone = recorded(ChangeType.MODIFIED, obj("a", rv="4"))
    assert redecide("s", None, gone, current=None) == [Change(ChangeType.DELETED, "s", gone.obj)]
