"""The scaler's own tuning, from `GATI_SCALER_*` variables, refused with the variable named.

Defaults suit production: a handler's data is fresh for a minute (Knative's stable window), an
idle handler is noticed within a second, and a crashed replica's handlers move to another after
at most `leaseSeconds`. Tests shorten them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from gati_scaler.windows import DEFAULT_WINDOW_SECONDS

PREFIX: Final = "GATI_SCALER_"


@dataclass(frozen=True)
class ScalerOptions:
    tick_seconds: float = 1.0
    """How often held handlers are re-decided without new samples (idleness, stabilization)."""
    lease_seconds: float = 15.0
    """Lease TTL per handler; renewed every tick, so it must cover several ticks."""
    resync_seconds: float = 30.0
    """How often the handler list is re-read, healing change events another replica took."""
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    """Rate window and staleness bound of the traffic samples."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if not value > 0:
                raise ValueError(f"{_variable(spec.name)} must be a positive number of seconds")
        if self.lease_seconds < 3 * self.tick_seconds:
            raise ValueError(
                f"{_variable('lease_seconds')} ({self.lease_seconds}) must be at least three "
                f"ticks ({_variable('tick_seconds')} = {self.tick_seconds}) so a live holder "
                "renews in time"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ScalerOptions:
        values: dict[str, float] = {}
        for spec in fields(cls):
            raw = environ.get(_variable(spec.name))
            if raw is None:
                continue
            try:
                values[spec.name] = float(raw)
            except ValueError:
                raise ValueError(
                    f"{_variable(spec.name)}={raw!r} is not a number of seconds, such as 15"
                ) from None
        return cls(**values)


def _variable(field_name: str) -> str:
    return PREFIX + field_name.upper()
