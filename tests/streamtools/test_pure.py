"""The stream tools' rules without a server: positions, export lines, timeline, routes, replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.events import ChangeEvent, ChangeType, encode_event
from gati_contracts.objects import InvalidObjectError, parse_object
from gati_reconciler.diff import object_changes
from gati_reconciler.manifests import ManifestError, render
from gati_streamtools.manifest_changes import manifest_changes
from gati_streamtools.positions import Position, PositionError, parse_position
from gati_streamtools.reader import StoredMessage
from gati_streamtools.records import Record, decode_record, export_line, read_export_line
from gati_streamtools.replay import (
    ReconcilerReplay,
    RepublishPrefixError,
    check_republish_prefix,
)
from gati_streamtools.routes_at import routes_json, tables_at
from gati_streamtools.timeline import (
    ObjectRefError,
    build_timeline,
    object_subjects,
    parse_object_ref,
)
from streamtools.recorded import (
    NOW,
    change,
    handler_object,
    outcome,
    routes,
    stored_ns,
    subject_of,
)


def stored(
    sequence: int,
    data: bytes,
    subject: str = "gati.cr.gatihandler.shop.orders",
    time: datetime = NOW,
) -> StoredMessage:
    return StoredMessage("GATI", sequence, subject, stored_ns(time), {"Gati-Schema": "x"}, data)


def record(sequence: int, event: object, time: datetime = NOW) -> Record:
    from gati_contracts.events import Event

    assert isinstance(event, Event)
    return decode_record(stored(sequence, encode_event(event), subject_of(event), time))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", Position(sequence=42)),
        ("10m", Position(time=NOW - timedelta(minutes=10))),
        ("2026-11-26T19:00:00Z", Position(time=datetime(2026, 11, 26, 19, tzinfo=UTC))),
        ("2026-11-26T20:00:00+01:00", Position(time=datetime(2026, 11, 26, 19, tzinfo=UTC))),
    ],
)
def test_positions_accept_sequences_ages_and_rfc3339(text: str, expected: Position) -> None:
    assert parse_position(text, option="--since", now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("0", "start at 1"), ("yesterday", "RFC 3339"), ("2026-11-26T19:00:00", "UTC offset")],
)
def test_bad_positions_name_the_flag_and_the_form(text: str, fragment: str) -> None:
    with pytest.raises(PositionError, match=fragment) as caught:
        parse_position(text, option="--until", now=NOW)
    assert "--until" in str(caught.value)


def test_export_line_round_trips_event_and_keeps_unreadable_bytes() -> None:
    event = change(handler_object(5))
    meta, parsed = read_export_line(export_line(record(7, event)))
    assert (meta.sequence, meta.subject, meta.time, parsed) == (7, subject_of(event), NOW, event)
    garbage = decode_record(stored(8, b"\xff not json"))
    meta, parsed = read_export_line(export_line(garbage))
    assert parsed is None
    assert meta.error is not None
    import base64

    assert base64.b64decode(meta.data_base64 or "") == b"\xff not json"


def test_object_refs_take_kubectl_kind_spellings_and_explain_mistakes() -> None:
    assert parse_object_ref("gh/shop/orders") == parse_object_ref("GatiHandler/shop/orders")
    assert object_subjects(parse_object_ref("gh/shop/orders")) == [
        "gati.cr.gatihandler.shop.orders",
        "gati.status.gatihandler.shop.orders",
        "gati.owned.deployment.shop.orders",
    ]
    with pytest.raises(ObjectRefError, match="KIND/NAMESPACE/NAME"):
        parse_object_ref("orders")
    with pytest.raises(ObjectRefError, match="GatiModule"):
        parse_object_ref("pod/shop/orders")


def test_timeline_diffs_spec_links_outcomes_and_shows_status_transitions() -> None:
    running = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available"}],
    }
    entries = build_timeline(
        [
            record(1, change(handler_object(1))),
            record(2, change(handler_object(2, image="ghcr.io/x/orders:2.0.0"))),
            record(3, outcome(2)),
            record(4, change(handler_object(3, image="ghcr.io/x/orders:2.0.0", status=running))),
            record(5, outcome(99, reason="Orphan")),
            decode_record(stored(6, b"{}")),
        ]
    )
    assert [e.record.message.sequence for e in entries] == [1, 2, 4, 5, 6]
    first, second, third, orphan, bad = entries
    assert any(str(c).startswith("+ spec:") for c in first.spec_changes)
    assert [str(c) for c in second.spec_changes] == [
        '~ spec.image: "ghcr.io/x/orders:1.0.0" -> "ghcr.io/x/orders:2.0.0"'
    ]
    assert [o.message.sequence for o in second.outcomes] == [3]
    assert third.spec_changes == []
    assert third.status_changes == ["phase: - -> Running", "condition Ready: - -> True (Available)"]
    assert orphan.outcomes == []
    assert orphan.record.event is not None
    assert bad.record.event is None
    assert bad.record.error


def test_routes_at_takes_the_last_table_per_path_at_or_before_the_instant() -> None:
    later = NOW + timedelta(minutes=5)
    records = [record(1, routes({"v1": 100}), NOW), record(2, routes({"v1": 90, "v2": 10}), later)]
    assert [t["versions"][0]["weight"] for t in routes_json(tables_at(records, NOW).values())] == [
        100
    ]
    latest = routes_json(tables_at(records, None).values())
    assert [(v["versionId"], v["weight"]) for v in latest[0]["versions"]] == [
        ("v1", 90),
        ("v2", 10),
    ]
    assert set(latest[0]) == {"namespace", "path", "defaultVersion", "versions"}
    assert routes_json(tables_at(records, NOW - timedelta(seconds=1)).values()) == []
    assert routes_json(tables_at(records, None).values(), namespace="other") == []


def test_reconciler_replay_renders_then_diffs_against_the_previous_rendering() -> None:
    replay = ReconcilerReplay()
    first = replay.decide(record(1, change(handler_object(1))))
    assert first[0].action == "apply"
    assert {m["kind"] for m in first[0].manifests} >= {"Deployment", "Service", "ConfigMap"}
    echo = handler_object(2, status={"phase": "Running", "readyReplicas": 2})
    again = replay.decide(record(2, change(echo)))
    assert again[0].action == "unchanged"
    assert again[0].manifests == first[0].manifests, "a status echo is not rendered again"
    updated = replay.decide(record(3, change(handler_object(3, image="ghcr.io/x/orders:2.0.0"))))
    assert updated[0].changes == [
        "Deployment orders: ~ spec.template.spec.containers[name=handler].image: "
        '"ghcr.io/x/orders:1.0.0" -> "ghcr.io/x/orders:2.0.0"'
    ]
    broken = handler_object(4)
    broken["spec"]["port"] = 0
    failed = replay.decide(record(4, change(broken)))
    assert failed[0].action == "failed"
    assert any("spec.port" in line for line in failed[0].changes)
    broken["metadata"]["resourceVersion"] = "5"
    assert replay.decide(record(5, change(broken)))[0].action == "failed", "said every time"
    assert replay.decide(record(6, outcome(1))) == []


def _renamed(obj: dict[str, Any], name: str) -> dict[str, Any]:
    obj["metadata"] |= {"name": name, "uid": f"uid-{name}"}
    return obj


def _spec_changes_and_echoes() -> list[Record]:
    """Two handlers interleaved: creations, status echoes, an image change, a broken spec and
    its echo, the fix back to the spec before it, a label change, a deletion, a recreation, and
    a revert to an earlier image."""
    running = {"phase": "Running", "readyReplicas": 2}
    v2 = "ghcr.io/x/orders:2.0.0"
    broken = handler_object(7, image=v2)
    broken["spec"]["port"] = 0
    relabelled = handler_object(10, image=v2)
    relabelled["metadata"]["labels"] = {"team": "shop"}
    events = [
        change(handler_object(1)),  # apply
        change(_renamed(handler_object(2), "cart")),  # apply
        change(handler_object(3, status=running)),  # unchanged (echo)
        change(handler_object(4, image=v2)),  # apply
        change(_renamed(handler_object(5, image=v2), "cart")),  # apply
        change(handler_object(6, image=v2, status=running)),  # unchanged (echo)
        change(broken),  # failed
        change(broken | {"status": running}),  # failed
        change(handler_object(9, image=v2)),  # unchanged (as before the failure)
        change(relabelled),  # unchanged (rendered again: labels are not copied)
        change(handler_object(11), ChangeType.DELETED),  # deleted
        change(handler_object(12, image=v2)),  # apply (created)
        change(_renamed(handler_object(13, status=running), "cart")),  # apply (revert)
        change(handler_object(14, image=v2, status=running)),  # unchanged (echo)
    ]
    return [record(sequence, event) for sequence, event in enumerate(events, start=1)]


def _rendered_every_time(records: list[Record]) -> list[tuple[str, list[str], list[Any]]]:
    """What the reconciler replay decides when it renders every event and diffs the whole of
    each manifest: the reference the memoized replay must equal."""
    previous: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    decided: list[tuple[str, list[str], list[Any]]] = []
    for each in records:
        event = each.event
        assert isinstance(event, ChangeEvent)
        if event.type is ChangeType.DELETED:
            previous.pop(event.name, None)
            decided.append(("deleted", [], []))
            continue
        try:
            manifests = render(parse_object(event.obj))  # type: ignore[arg-type]
        except (InvalidObjectError, ManifestError) as error:
            decided.append(("failed", str(error).splitlines(), []))
            continue
        before = previous.get(event.name, {})
        current = {(m["kind"], m["metadata"]["name"]): m for m in manifests}
        changes = [
            f"{kind} {name}: {c}"
            for (kind, name), manifest in current.items()
            for c in (
                ["created"]
                if (kind, name) not in before
                else object_changes(before[kind, name], manifest)
            )
        ] + [f"{kind} {name}: deleted" for kind, name in before if (kind, name) not in current]
        previous[event.name] = current
        decided.append(("apply" if changes else "unchanged", changes, manifests))
    return decided


def test_the_memoized_replay_decides_as_rendering_every_event_would() -> None:
    records = _spec_changes_and_echoes()
    replay = ReconcilerReplay()
    memoized = [
        (d.action, [] if d.action == "deleted" else d.changes, d.manifests)
        for each in records
        for d in replay.decide(each)
    ]
    assert memoized == _rendered_every_time(records)
    actions = [action for action, _, _ in memoized]
    assert actions == [
        *("apply", "apply", "unchanged", "apply", "apply", "unchanged", "failed", "failed"),
        *("unchanged", "unchanged", "deleted", "apply", "apply", "unchanged"),
    ]


@pytest.mark.parametrize("prefix", ["gati", "gati.cr", "gati.status.x"])
def test_republish_refuses_prefixes_the_stream_would_capture(prefix: str) -> None:
    with pytest.raises(RepublishPrefixError, match="captures"):
        check_republish_prefix(prefix)


@pytest.mark.parametrize("prefix", ["", "a..b", "replay.*", "has space"])
def test_republish_refuses_malformed_prefixes(prefix: str) -> None:
    with pytest.raises(RepublishPrefixError, match="tokens"):
        check_republish_prefix(prefix)


def test_republish_accepts_a_prefix_outside_the_stream() -> None:
    assert check_republish_prefix("replay.lab1") == "replay.lab1"


def test_change_event_fixture_is_a_contract_event() -> None:
    assert isinstance(change(handler_object(1)), ChangeEvent)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["a", "1", "1000m"])
)
_keys = st.sampled_from(
    ["name", "image", "env", "spec", "resources", "cpu", "value", "status", "metadata", "uid"]
)


def _named_items(children: st.SearchStrategy[Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    item = st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b", "c"])}, optional={"value": children, "image": children}
    )
    return st.lists(item, max_size=3)


_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.dictionaries(_keys, children, max_size=4),
        _named_items(children),
        st.lists(children, max_size=2),
    ),
    max_leaves=12,
)
_objects = st.dictionaries(_keys, _values, max_size=4)


@given(_objects, _objects)
def test_the_replay_diff_reports_exactly_the_reconciler_diff(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    assert manifest_changes(before, after) == object_changes(before, after)


def test_the_replay_changes_no_render_it_decided_with() -> None:
    """Renders are immutable and shared between the replay's decisions (unchanged manifests,
    the previous rendering it diffs against): each decision's manifests read later as they read
    when it was taken."""
    records = _spec_changes_and_echoes()
    first = records[0].event
    assert isinstance(first, ChangeEvent)
    before = render(parse_object(first.obj))  # type: ignore[arg-type]
    decided = [(before, msgspec.json.encode(before))]
    replay = ReconcilerReplay()
    for each in records:
        for decision in replay.decide(each):
            decided.append((decision.manifests, msgspec.json.encode(decision.manifests)))
    assert len([manifests for manifests, _ in decided if manifests]) > 5
    for manifests, frozen in decided:
        assert msgspec.json.encode(manifests) == frozen
