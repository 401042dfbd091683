"""Versions of one path together: the target, superseded and replaced versions, the table."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gati_contracts.rollout import RolloutSpec
from gati_contracts.routing import version_as_of
from gati_contracts.version import VersionPhase
from gati_timescape.actions import ActionRequest, RolloutAction
from gati_timescape.health import HealthReading
from gati_timescape.rollout import evaluate
from gati_timescape.routing import RoutedVersion, RoutingError, build_table
from gati_timescape.state import IN_FLIGHT, VersionState
from gati_timescape.succession import settle, stable, target
from timescape.helpers import FAILING, HEALTHY, T0, UNREADY, at

P = VersionPhase
ACTIVE_V1 = VersionState(phase=P.ACTIVE, current_weight=100, activated_at=T0)
IN_STEP_2 = VersionState(
    phase=P.PROGRESSING, current_step=1, current_weight=50, step_started_at=at(300)
)


def routed(version_id: str, state: VersionState, **extra: object) -> RoutedVersion:
    return RoutedVersion(version_id, state, f"orders-{version_id}", 8080, **extra)  # type: ignore[arg-type]


def test_a_new_version_supersedes_the_one_in_flight() -> None:
    path = [("v1", ACTIVE_V1), ("v2", IN_STEP_2), ("v3", VersionState())]
    assert (target(path), stable(path)) == ("v3", "v1")
    changes = settle(path, at(400))
    assert list(changes) == ["v2"]
    v2 = changes["v2"].state
    assert (v2.phase, v2.current_weight, v2.draining_since, v2.activated_at) == (
        P.DRAINING,
        0,
        at(400),
        None,
    )
    assert [o.reason for o in changes["v2"].outcomes] == ["Superseded"]
    table = build_table("shop", "/orders", [routed(v, s) for v, s in path], observed_at=at(400))
    assert {v.version_id: v.weight for v in table.versions} == {"v1": 50, "v2": 50, "v3": 0}
    settled = [(v, changes[v].state if v in changes else s) for v, s in path]
    table = build_table("shop", "/orders", [routed(v, s) for v, s in settled], observed_at=at(400))
    assert {v.version_id: v.weight for v in table.versions} == {"v1": 100, "v2": 0, "v3": 0}
    assert settle(settled, at(500)) == {}


def test_an_activated_version_replaces_the_older_active_one() -> None:
    v2 = replace(ACTIVE_V1, activated_at=at(900))
    changes = settle([("v1", ACTIVE_V1), ("v2", v2)], at(900))
    assert [(n, d.state.phase, d.state.current_weight) for n, d in changes.items()] == [
        ("v1", P.DRAINING, 0)
    ]
    assert changes["v1"].outcomes[0].reason == "Replaced"


def test_table_shape_and_who_leaves_it() -> None:
    versions = [
        routed("v0", replace(ACTIVE_V1, phase=P.DECOMMISSIONED, current_weight=0)),
        routed("v1", ACTIVE_V1, breaking=True, transformers=("v1-to-v2",)),
        routed("v2", replace(IN_STEP_2, phase=P.ROLLED_BACK, current_weight=0)),
    ]
    table = build_table("shop", "/orders", versions, observed_at=T0, source="timescape-0")
    assert table.default_version == "v1"
    [only] = table.versions
    assert (only.version_id, only.weight, only.breaking, only.transformers) == (
        "v1",
        100,
        True,
        ["v1-to-v2"],
    )


def test_no_active_version_means_an_empty_table() -> None:
    table = build_table("shop", "/orders", [routed("v1", VersionState())], observed_at=T0)
    assert (table.default_version, table.versions) == (None, [])


def test_an_unsettled_path_is_refused_by_name() -> None:
    versions = [
        routed("v1", ACTIVE_V1),
        routed("v2", IN_STEP_2),
        routed("v3", replace(IN_STEP_2, current_weight=60)),
    ]
    with pytest.raises(RoutingError, match="v1"):
        build_table("shop", "/orders", versions, observed_at=T0)


SPEC = RolloutSpec()
READINGS = st.sampled_from([HEALTHY, HEALTHY, HEALTHY, FAILING, UNREADY])
OPS = st.one_of(
    st.tuples(st.just("tick"), st.integers(1, 900), READINGS),
    st.tuples(st.just("act"), st.integers(0, 4), READINGS),
    st.tuples(st.just("new"), st.just(0), READINGS),
)
"""Ticks and actions first: hypothesis favours the first branches, and a rollout needs several
ticks (and a retry a rollback) between two new versions to get anywhere."""


class Path:
    """A path driven the way the service will drive it: settle, evaluate the target, settle."""

    def __init__(self) -> None:
        self.versions: list[tuple[str, VersionState]] = []
        self.now = T0
        self.nonce = 0

    def step(self, op: str, value: int, health: HealthReading) -> None:
        action = None
        if op == "tick":
            self.now += timedelta(seconds=value)
        elif op == "new":
            self.versions.append((f"v{len(self.versions) + 1}", VersionState()))
        else:
            self.nonce += 1
            action = ActionRequest(list(RolloutAction)[value], str(self.nonce))
        self.settle()
        if self.versions:  # after settle the target, if any, is the newest version
            name, state = self.versions[-1]
            assert target(self.versions) in {name, None}
            has_stable = stable(self.versions) not in {name, None}
            decision = evaluate(state, SPEC, health, self.now, has_stable=has_stable, action=action)
            self.versions[-1] = (name, decision.state)
        self.settle()

    def settle(self) -> None:
        changes = settle(self.versions, self.now)
        self.versions = [(n, changes[n].state if n in changes else s) for n, s in self.versions]


@settings(max_examples=200)
@given(ops=st.lists(OPS, max_size=40))
def test_weights_sum_to_100_at_every_moment(ops: list[tuple[str, int, HealthReading]]) -> None:
    path = Path()
    for op in ops:
        path.step(*op)
        routes = [routed(name, state) for name, state in path.versions]
        table = build_table("shop", "/orders", routes, observed_at=path.now)
        assert sum(v.weight for v in table.versions) == (100 if table.versions else 0)
        assert sum(s.phase in IN_FLIGHT for _, s in path.versions) <= 1
        assert sum(s.phase is P.ACTIVE for _, s in path.versions) <= 1


gaps = st.integers(min_value=1, max_value=3 * 3600)


@given(first=gaps, second=gaps, third=gaps, probe=st.integers(0, 4 * 3 * 3600 + 3600))
def test_as_of_across_three_rolled_out_versions(
    first: int, second: int, third: int, probe: int
) -> None:
    """v1, v2 and v3 go through real rollouts; "as of" answers by their activation times."""
    path = Path()
    for gap in (first, second, third):
        path.step("tick", gap, HEALTHY)
        path.step("new", 0, HEALTHY)
        for _ in range(3):  # gate, 5 min at 10 %, 10 min at 50 %
            path.step("tick", 900, HEALTHY)
    activations = [s.activated_at for _, s in path.versions if s.activated_at is not None]
    assert len(activations) == 3
    assert activations == sorted(activations)
    routes = [routed(name, state) for name, state in path.versions]
    table = build_table("shop", "/orders", routes, observed_at=path.now)
    when = T0 + timedelta(seconds=probe)
    expected = [name for name, s in path.versions if s.activated_at and s.activated_at <= when]
    found = version_as_of(table, when)
    assert (found.version_id if found else None) == (expected[-1] if expected else None)
