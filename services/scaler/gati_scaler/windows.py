"""What the traffic samples of one handler version say, as a deterministic fold over the samples.

A scaler replica that takes over an object replays the recent metrics stream into a fresh
`TrafficWindow` and must reach the state the previous replica had, or a failover would jump the
replica count. So the state depends only on the samples and the order they are added in, never
on a wall clock: pruning is relative to the newest `observedAt` seen, and a sample delivered
twice (at-least-once) replaces itself instead of counting twice.

Rules, chosen once here:
- A *stream* is one router (`source`) reporting on the handler version; the handler's request
  rate is the sum over streams of each stream's requests / seconds its samples cover.
- Samples observed within `window_seconds` of the newest one count; the rate is the one as of
  the newest sample. When even the newest is older than `window_seconds` at `now` there is
  *no data*, which differs from samples that say 0 requests.
- In-flight requests count as activity (they hold off scale to zero and wake a handler at zero),
  not as rate: the spec has a requests-per-second target and no concurrency target, so a
  concurrency could not be compared with it without inventing a unit conversion.
- Every sample also records the rate as of the newest sample, so the scale-down stabilization
  window ("the highest recommendation over the window wins") is part of the fold as well.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from gati_contracts.events import TrafficSample

DEFAULT_WINDOW_SECONDS: Final = 60.0
"""Rate window and staleness bound alike, as Knative's stable window: a router that reports at
least once a minute keeps its handler's data fresh."""
HISTORY_SECONDS: Final = 3600.0
"""How far back rates are kept: the largest `scaleDownStabilizationSeconds` the spec allows."""
MAX_RATE: Final = 1e12
"""Requests per second beyond any real handler: an absurd sample (a `windowSeconds` of 1e-300)
saturates here instead of reaching infinity, which JSON and status writes cannot carry."""
MAX_CLOCK_SKEW_SECONDS: Final = 30.0
"""How far ahead of the stream's receipt time a router's `observedAt` may be."""


class SampleMismatchError(ValueError):
    """A sample for another handler version reached this window: a routing bug upstream."""


class SampleClockError(ValueError):
    """A sample's `observedAt` is implausible against the time the stream received it.

    One sample stamped an hour ahead would otherwise count as fresh for that hour, and one
    stamped long ago would make the handler look idle since then; both are a router's clock
    at fault, so the sample is refused whole and the window is left as it was.
    """


@dataclass(frozen=True)
class RatePoint:
    at: datetime
    rate: float
    """Requests per second of the whole handler version as of `at`."""


@dataclass(frozen=True)
class _Observation:
    at: datetime
    window_seconds: float
    requests: int
    in_flight: int


@dataclass
class TrafficWindow:
    """Samples of one handler version, folded with `add`; compare two windows with `==`."""

    namespace: str
    handler: str
    version: str
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    history_seconds: float = HISTORY_SECONDS
    _streams: dict[str, dict[datetime, _Observation]] = field(default_factory=dict)
    _rates: deque[RatePoint] = field(default_factory=deque)
    _newest: datetime | None = None
    _first_seen: datetime | None = None
    _last_active: datetime | None = None

    def __post_init__(self) -> None:
        if not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be positive, not {self.window_seconds}")
        if self.history_seconds < self.window_seconds:
            raise ValueError("history_seconds must be at least window_seconds")

    def add(self, sample: TrafficSample, received_at: datetime | None = None) -> None:
        """Fold one sample in, without changing anything when it is refused.

        `received_at` is when the stream stored the sample (its JetStream timestamp, the same on
        every replay, so the check keeps the fold deterministic). A replica taking over replays
        the stream through `add` with the same `received_at`, skipping what is refused, as it
        was refused live. Raises `SampleMismatchError`
        for another handler's sample and `SampleClockError` for an `observedAt` more than
        `MAX_CLOCK_SKEW_SECONDS` after `received_at`, or already stale when it arrived.
        """
        for name, wanted, got in (
            ("namespace", self.namespace, sample.namespace),
            ("handler", self.handler, sample.handler),
            ("version", self.version, sample.version),
        ):
            if wanted != got:
                raise SampleMismatchError(
                    f"sample {name} {got!r} does not match this window's {wanted!r}; "
                    "route samples by their subject before folding them"
                )
        at = sample.observed_at
        if received_at is not None:
            ahead = (at - received_at).total_seconds()
            if ahead > MAX_CLOCK_SKEW_SECONDS or -ahead >= self.window_seconds:
                when = f"{ahead:.0f}s after" if ahead > 0 else f"{-ahead:.0f}s before"
                raise SampleClockError(
                    f"sample observedAt {at.isoformat()} is {when} the stream received it; "
                    f"fix the clock of router {sample.source!r} (NTP) or publish samples "
                    "as their window closes"
                )
        self._streams.setdefault(sample.source, {})[at] = _Observation(
            at, sample.window_seconds, sample.requests, sample.in_flight
        )
        start = at - timedelta(seconds=sample.window_seconds)
        if self._first_seen is None or start < self._first_seen:
            self._first_seen = start
        if (sample.requests or sample.in_flight) and (
            self._last_active is None or at > self._last_active
        ):
            self._last_active = at
        if self._newest is None or at > self._newest:
            self._newest = at
        self._prune(self._newest)
        self._rates.append(RatePoint(self._newest, self._summed_rate()))

    def has_data(self, now: datetime) -> bool:
        """Whether the newest sample was observed within the window before `now` (or after it,
        by a router's clock skew)."""
        return self._newest is not None and self._is_fresh(self._newest, now)

    def rate(self, now: datetime) -> float:
        """Requests per second as of the newest sample; 0 without data.

        Held between samples rather than recomputed at `now`: a sample ageing out would raise
        the rate (fewer seconds covered) with no new evidence, and the stabilization window
        could not remember a recommendation made from a rate no sample recorded.
        """
        return self._rates[-1].rate if self.has_data(now) else 0.0

    def in_flight(self, now: datetime) -> int:
        """Requests in flight by the latest sample of each router, summed; 0 without data."""
        if not self.has_data(now):
            return 0
        return sum(stream[max(stream)].in_flight for stream in self._streams.values())

    def sample_count(self, now: datetime) -> int:
        """The samples the rate comes from; 0 without data."""
        if not self.has_data(now):
            return 0
        return sum(len(stream) for stream in self._streams.values())

    def idle_seconds(self, now: datetime) -> float:
        """How long the samples have shown neither requests nor in-flight ones.

        Counted from the last active sample, or from the start of the oldest sample folded in
        when none was active: a replica that replays a short stretch of history therefore waits
        longer before scaling to zero, never less.
        """
        since = self._last_active or self._first_seen
        if since is None:
            return 0.0
        return max(0.0, (now - since).total_seconds())

    def peak_rate(self, since: datetime, now: datetime) -> float:
        """The highest rate in effect over (`since`, `now`].

        A rate holds from its sample until the next one, as long as its samples are fresh, so
        the rate in effect at `since` counts too: a decision taken between two samples saw it.
        """
        peak, in_effect = 0.0, None
        for point in self._rates:
            if point.at > now:
                break
            if point.at <= since:
                in_effect = point
            else:
                peak = max(peak, point.rate)
        if in_effect is not None and self._is_fresh(in_effect.at, since):
            peak = max(peak, in_effect.rate)
        return peak

    def _summed_rate(self) -> float:
        """Per router, requests over the seconds its kept samples cover; summed over routers."""
        total = 0.0
        for stream in self._streams.values():
            seconds = sum(o.window_seconds for o in stream.values())
            total += sum(o.requests for o in stream.values()) / seconds
        return min(total, MAX_RATE)

    def _is_fresh(self, at: datetime, now: datetime) -> bool:
        return (now - at).total_seconds() < self.window_seconds

    def _prune(self, newest: datetime) -> None:
        for source in list(self._streams):
            stream = self._streams[source]
            for at in [at for at in stream if not self._is_fresh(at, newest)]:
                del stream[at]
            if not stream:
                del self._streams[source]
        horizon = newest - timedelta(seconds=self.history_seconds)
        while len(self._rates) > 1 and self._rates[1].at <= horizon:
            self._rates.popleft()
