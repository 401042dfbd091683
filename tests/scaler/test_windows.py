"""The traffic window: rates summed over routers, staleness, idle time, and a replayable fold."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gati_contracts.events import TrafficSample
from gati_scaler.windows import MAX_RATE, SampleClockError, SampleMismatchError, TrafficWindow
from scaler.traffic import HANDLER, NAMESPACE, VERSION, at, sample, steady, window_of


def test_rate_is_requests_over_seconds_covered_summed_over_routers() -> None:
    window = window_of(
        [
            sample(10, 100),
            sample(20, 300),
            sample(15, 50, window=5, source="router-b"),
        ]
    )
    # router-a: 400 requests over 20 s; router-b: 50 over 5 s.
    assert window.rate(at(20)) == pytest.approx(20 + 10)
    assert window.sample_count(at(20)) == 3


def test_in_flight_is_the_latest_per_router_summed() -> None:
    window = window_of(
        [
            sample(10, 0, in_flight=7),
            sample(20, 0, in_flight=2),
            sample(20, 0, in_flight=3, source="router-b"),
        ]
    )
    assert window.in_flight(at(25)) == 5


def test_redelivered_sample_counts_once() -> None:
    once = window_of([sample(10, 100), sample(20, 100)])
    twice = window_of([sample(10, 100), sample(10, 100), sample(20, 100)])
    assert twice.rate(at(20)) == once.rate(at(20)) == pytest.approx(10)


def test_samples_older_than_the_window_are_no_data() -> None:
    window = window_of([sample(10, 100)])
    assert window.has_data(at(69))
    assert not window.has_data(at(70))
    assert window.rate(at(70)) == 0
    assert window.sample_count(at(70)) == 0


def test_zero_requests_is_data_and_idle_time_counts_from_the_oldest_sample() -> None:
    window = window_of(steady(0, 120, 0))
    assert window.has_data(at(120))
    # The first sample covered (0, 10]: nothing was seen since t=0.
    assert window.idle_seconds(at(120)) == 120


def test_idle_time_counts_from_the_last_request_or_in_flight() -> None:
    window = window_of([sample(10, 5), sample(20, 0, in_flight=1), sample(30, 0)])
    assert window.idle_seconds(at(50)) == 30
    assert TrafficWindow(NAMESPACE, HANDLER, VERSION).idle_seconds(at(50)) == 0


def test_peak_rate_remembers_rates_after_their_samples_leave_the_window() -> None:
    window = window_of(steady(0, 30, 80) + steady(200, 260, 5))
    assert window.rate(at(260)) == pytest.approx(5)
    assert window.peak_rate(at(0), at(260)) == pytest.approx(80)
    assert window.peak_rate(at(100), at(260)) == pytest.approx(5)


def test_history_is_bounded() -> None:
    window = TrafficWindow(NAMESPACE, HANDLER, VERSION, history_seconds=100)
    for s in steady(0, 1000, 1):
        window.add(s)
    assert window.peak_rate(at(0), at(1000)) == pytest.approx(1)
    assert len(window._rates) <= 11


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("namespace", TrafficWindow("other", HANDLER, VERSION)),
        ("handler", TrafficWindow(NAMESPACE, "/other", VERSION)),
        ("version", TrafficWindow(NAMESPACE, HANDLER, "v9")),
    ],
)
def test_a_sample_of_another_handler_is_refused_by_name(field: str, other: TrafficWindow) -> None:
    with pytest.raises(SampleMismatchError, match=f"sample {field}"):
        other.add(sample(10, 1))
    assert not other.has_data(at(10))


def test_bad_window_options_are_refused() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        TrafficWindow(NAMESPACE, HANDLER, VERSION, window_seconds=0)
    with pytest.raises(ValueError, match="history_seconds"):
        TrafficWindow(NAMESPACE, HANDLER, VERSION, window_seconds=60, history_seconds=30)


def test_an_absurdly_short_sample_window_does_not_overflow() -> None:
    window = window_of([sample(10, 2**62, window=1e-300)])
    assert window.rate(at(10)) == MAX_RATE


samples_strategy = st.lists(
    st.builds(
        sample,
        st.integers(0, 600).map(float),
        st.integers(0, 1000),
        window=st.sampled_from([1.0, 5.0, 10.0, 30.0]),
        in_flight=st.integers(0, 5),
        source=st.sampled_from(["router-a", "router-b", "router-c"]),
    ),
    max_size=60,
)


@given(samples_strategy)
def test_folding_the_same_samples_reaches_the_same_state(samples: list[TrafficSample]) -> None:
    first, second = window_of(samples), window_of(list(samples))
    assert first == second
    for t in (0, 300, 600, 700):
        assert first.rate(at(t)) == second.rate(at(t))
        assert first.idle_seconds(at(t)) == second.idle_seconds(at(t))


@given(samples_strategy)
def test_folding_is_idempotent_per_sample(samples: list[TrafficSample]) -> None:
    """At-least-once delivery: each sample arriving twice in a row changes no rate."""
    once, twice = window_of(samples), window_of([s for s in samples for _ in range(2)])
    for t in (300, 600):
        assert twice.rate(at(t)) == once.rate(at(t))
        assert twice.in_flight(at(t)) == once.in_flight(at(t))


@pytest.mark.parametrize(("skew", "message"), [(31, "31s after"), (-60, "60s before")])
def test_a_sample_from_a_wrong_clock_is_refused_and_changes_nothing(
    skew: float, message: str
) -> None:
    window = window_of([sample(10, 100)])
    before = window_of([sample(10, 100)])
    with pytest.raises(SampleClockError, match=message) as caught:
        window.add(sample(20 + skew, 5000), received_at=at(20))
    assert "router-a" in str(caught.value)
    assert window == before


@pytest.mark.parametrize("skew", [30, 0, -59])
def test_a_sample_within_clock_bounds_is_kept(skew: float) -> None:
    window = window_of([])
    window.add(sample(100 + skew, 100), received_at=at(100))
    assert window.sample_count(at(100 + skew)) == 1


def fold_received(pairs: list[tuple[TrafficSample, float]]) -> TrafficWindow:
    """What the live path and a replay both do: add at the stream's receipt time, skip refusals."""
    window = TrafficWindow(NAMESPACE, HANDLER, VERSION)
    for s, skew in pairs:
        with contextlib.suppress(SampleClockError):
            window.add(s, received_at=s.observed_at - timedelta(seconds=skew))
    return window


received = st.tuples(
    st.builds(
        sample,
        st.integers(0, 600).map(float),
        st.integers(0, 1000),
        source=st.sampled_from(["router-a", "router-b"]),
    ),
    st.integers(-120, 120).map(float),
)


@given(st.lists(received, max_size=40))
def test_replaying_with_receipt_times_reaches_the_live_state(
    pairs: list[tuple[TrafficSample, float]],
) -> None:
    assert fold_received(pairs) == fold_received(list(pairs))
