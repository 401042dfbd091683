"""How a new version takes traffic: weighted steps with pauses, gated by health analysis.

The defaults follow what issue 6 and Flagger users expect: 10 % for 5 minutes, 50 % for
10 minutes, then 100 %; the health gate is checked every minute and one failed check rolls back.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Final, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from gati_contracts.fieldtypes import Duration, Ratio, Weight
from gati_contracts.wire import WireModel


class RolloutStep(WireModel):
    # Frozen, so the default steps can be built once and shared by every parsed resource.
    model_config = ConfigDict(frozen=True)

    weight: Weight
    """Percentage of the path's traffic this version receives during the step."""
    pause: Duration | None = None
    """How long to hold the step; absent means wait for `gati-operator rollout promote`."""


DEFAULT_STEPS: Final = (
    RolloutStep(weight=10, pause="5m"),
    RolloutStep(weight=50, pause="10m"),
    RolloutStep(weight=100),
)


def _default_steps() -> list[RolloutStep]:
    """A list of its own per resource (frozen steps are shared): validating the defaults anew
    on every parse was a third of parsing a handler that leaves `timescape` out."""
    return list(DEFAULT_STEPS)


class RolloutAnalysis(WireModel):
    model_config = ConfigDict(frozen=True)

    interval: Duration = "1m"
    """How often the health gate is checked, before each step and during pauses."""
    min_ready_ratio: Ratio = 1.0
    """Fraction of the version's replicas that must be ready."""
    min_success_rate: Ratio = 0.99
    """Fraction of requests that must succeed, from traffic samples; no traffic passes."""
    max_latency_p99_ms: float | None = Field(default=None, gt=0)
    """Highest acceptable p99 latency; absent means latency is not checked."""
    failure_threshold: int = Field(default=1, ge=1)
    """Consecutive failed checks that trigger a rollback."""


DEFAULT_ANALYSIS: Final = RolloutAnalysis()
"""Shared by every resource that leaves `analysis` out (frozen, so no parse can change it)."""


class RolloutSpec(WireModel):
    steps: list[RolloutStep] = Field(default_factory=_default_steps, min_length=1, max_length=100)
    """Weights must rise step by step and end at 100; reaching the last step completes."""
    analysis: RolloutAnalysis = Field(default_factory=lambda: DEFAULT_ANALYSIS)

    @model_validator(mode="after")
    def _weights_rise_to_full(self) -> Self:
        weights = [step.weight for step in self.steps]
        if any(later <= earlier for earlier, later in pairwise(weights)):
            raise PydanticCustomError(
                "rollout_steps",
                "steps must have strictly increasing weights, such as 10, 50, 100 (got {got})",
                {"got": ", ".join(map(str, weights))},
            )
        if weights[-1] != 100:
            raise PydanticCustomError(
                "rollout_steps",
                "the last step must have weight 100; add a final step {weight: 100}",
            )
        return self
