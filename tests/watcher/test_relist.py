"""The relist rule, table-driven and property-checked: publish exactly what makes the stream's
last event per subject agree with the list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.events import ChangeEvent, ChangeType
from gati_watcher.relist import Change, after_conflict, holds, redecide, relist_changes

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


def test_a_watched_change_another_replica_stored_is_held_and_not_repeated() -> None:
    seen = obj("a", rv="5")
    stored = recorded(ChangeType.MODIFIED, seen)
    assert holds(stored, seen, deleted=False)
    assert not holds(stored, obj("a", rv="6"), deleted=False)
    assert after_conflict("s", seen, deleted=False, last=stored, current=obj("a", rv="9")) == []
    deletion = recorded(ChangeType.DELETED, obj("a", rv="4"))
    final = obj("a", rv="7")  # a watch's deletion carries the final state, a relist's the last
    assert holds(deletion, final, deleted=True)
    assert not holds(deletion, final, deleted=False)
    assert after_conflict("s", final, deleted=True, last=deletion, current=None) == []


def test_a_lagging_watch_publishes_nothing_over_a_state_it_has_not_reached() -> None:
    ahead = recorded(ChangeType.MODIFIED, obj("a", rv="12"))
    for lagging in ("10", "11"):
        change = obj("a", rv=lagging)
        assert after_conflict("s", change, deleted=False, last=ahead, current=ahead.obj) == []
    between = recorded(ChangeType.MODIFIED, obj("a", rv="11"))
    assert after_conflict("s", obj("a", rv="10"), deleted=False, last=between, current=None) == []
    assert (
        after_conflict(
            "s",
            obj("a"),
            deleted=True,
            last=recorded(ChangeType.ADDED, obj("a", uid="u2")),
            current=obj("a", uid="u2"),
        )
        == []
    )


def test_a_watch_level_with_the_server_stands_against_an_older_record() -> None:
    older = recorded(ChangeType.MODIFIED, obj("a", rv="4"))
    level = obj("a", rv="5")
    assert after_conflict("s", level, deleted=False, last=older, current=level) == [
        Change(ChangeType.MODIFIED, "s", level)
    ]
    assert after_conflict("s", level, deleted=False, last=None, current=level) == [
        Change(ChangeType.ADDED, "s", level)
    ]


def test_an_earlier_incarnation_on_top_is_older_than_any_state_of_the_living_one() -> None:
    reborn, later = obj("a", uid="u2", rv="8"), obj("a", uid="u2", rv="9")
    deleted = recorded(ChangeType.DELETED, obj("a", uid="u1", rv="3"))
    assert after_conflict("s", reborn, deleted=False, last=deleted, current=later) == [
        Change(ChangeType.ADDED, "s", reborn)
    ]
    alive = recorded(ChangeType.MODIFIED, obj("a", uid="u1", rv="3"))
    assert after_conflict("s", reborn, deleted=False, last=alive, current=later) == [
        Change(ChangeType.DELETED, "s", alive.obj),
        Change(ChangeType.ADDED, "s", reborn),
    ]
    assert after_conflict("s", reborn, deleted=False, last=alive, current=None) == []


def test_a_deletion_over_an_earlier_state_of_its_object_is_published() -> None:
    final = obj("a", rv="7")
    earlier = recorded(ChangeType.MODIFIED, obj("a", rv="6"))
    assert after_conflict("s", final, deleted=True, last=earlier, current=None) == [
        Change(ChangeType.DELETED, "s", final)
    ]
    reborn = obj("a", uid="u2")
    assert after_conflict("s", final, deleted=True, last=earlier, current=reborn) == [
        Change(ChangeType.DELETED, "s", final)
    ]
    assert after_conflict("s", final, deleted=True, last=earlier, current=final) == []
    assert after_conflict("s", final, deleted=True, last=None, current=None) == []
