"""The resolver routers use: explicit version, API as of a date, weighted choice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.events import RoutesEvent, RouteVersion
from gati_contracts.routing import resolve, table_json, version_as_of, weighted_version

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def table(*versions: tuple[str, int, datetime | None], default: str | None = None) -> RoutesEvent:
    return RoutesEvent(
        namespace="shop",
        path="/orders",
        default_version=default,
        versions=[
            RouteVersion(version_id=v, weight=w, activated_at=at, service=f"orders-{v}", port=8080)
            for v, w, at in versions
        ],
        observed_at=T0,
    )


def vid(version: RouteVersion | None) -> str | None:
    return None if version is None else version.version_id


gaps = st.integers(min_value=1, max_value=10**7).map(lambda s: timedelta(seconds=s))


@given(first=gaps, second=gaps, third=gaps, offset=st.integers(-(10**8), 3 * 10**7))
def test_as_of_answers_the_newest_version_active_then(
    first: timedelta, second: timedelta, third: timedelta, offset: int
) -> None:
    t1 = T0 + first
    t2 = t1 + second
    t3 = t2 + third
    routes = table(
        ("v1", 0, t1), ("v3", 100, t3), ("v2", 0, t2)
    )  # order in the table is irrelevant
    when = T0 + timedelta(seconds=offset)
    expected = None if when < t1 else "v1" if when < t2 else "v2" if when < t3 else "v3"
    assert vid(version_as_of(routes, when)) == expected


def test_a_version_never_activated_is_never_current() -> None:
    routes = table(("v1", 100, T0), ("v2", 0, None))
    assert vid(version_as_of(routes, T0 + timedelta(days=1))) == "v1"
    with pytest.raises(ValueError, match="time zone"):
        version_as_of(routes, datetime(2026, 1, 2))


def test_weights_split_draws_in_proportion() -> None:
    routes = table(("v1", 70, T0), ("v2", 0, T0), ("v3", 30, T0))
    picks = Counter(vid(weighted_version(routes, i / 1000)) for i in range(1000))
    assert picks == {"v1": 700, "v3": 300}
    with pytest.raises(ValueError, match="draw"):
        weighted_version(routes, 1.0)


def test_explicit_version_wins_then_date_then_weight() -> None:
    routes = table(("v1", 0, T0), ("v2", 100, T0 + timedelta(days=1)), default="v2")
    assert vid(resolve(routes, draw=0.5, version_id="v1", as_of=T0)) == "v1"
    assert vid(resolve(routes, draw=0.5, as_of=T0)) == "v1"
    assert vid(resolve(routes, draw=0.5)) == "v2"
    assert vid(resolve(routes, draw=0.5, version_id="v9")) is None

    assert vid(resolve(table(), draw=0.5)) is None


def test_table_json_is_what_routes_json_prints() -> None:
    routes = table(("v1", 100, T0), default="v1")
    assert table_json(routes) == {
        "namespace": "shop",
        "path": "/orders",
        "defaultVersion": "v1",
        "versions": [
            {
                "versionId": "v1",
                "weight": 100,
                "activatedAt": "2026-01-01T00:00:00Z",
                "service": "orders-v1",
                "port": 8080,
                "breaking": False,
                "transformers": [],
            }
        ],
    }
