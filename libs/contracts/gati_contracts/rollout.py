"""How a new version takes traffic: weighted steps with pauses, gated by health analysis.

The defaults follow what issue 6 and Flagger users expect: 10 % for 5 minutes, 50 % for
10 minutes, then 100 %; the health gate is checked every minute and one failed check rolls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Annotated, Final, Self

from pydantic import ConfigDict, Field, GetPydanticSchema, model_validator
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


RolloutSteps = Annotated[
    Sequence[RolloutStep], GetPydanticSchema(lambda _source, handler: handler(list[RolloutStep]))
]
"""Read-only to the type checker, as the default steps are one list shared by every resource,
yet validated and dumped as a plain list: a tuple would change the errors users read ("Tuple
should have at least 1 item") and what `model_dump` returns."""

DEFAULT_STEPS: Final[RolloutSteps] = [
    RolloutStep(weight=10, pause="5m"),
    RolloutStep(weight=50, pause="10m"),
    RolloutStep(weight=100),
]
"""One list for every resource that leaves `steps` out (a default value, unlike a factory's,
would be deep-copied by pydantic on every use, as a list is unhashable)."""


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
    # Frozen, so the default can be built once and shared by every resource that leaves
    # `rollout` out: building it per parse was a third of validating such a handler.
    model_config = ConfigDict(frozen=True)

    steps: RolloutSteps = Field(default_factory=lambda: DEFAULT_STEPS, min_length=1, max_length=100)
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


DEFAULT_ROLLOUT: Final = RolloutSpec()
"""Shared by every handler that leaves `rollout` out (frozen, so no parse can change it)."""
