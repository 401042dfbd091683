"""Fault injection for reliability tests: latency or errors on chosen requests.

Rules are matched per request by verb and resource with a probability and an optional
count, so a test can say "the next two list calls on deployments fail with 500" and leave
everything else healthy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class FaultRule:
    """One rule. `code` 0 means delay only; `times` None means until cleared."""

    verb: str | None = None
    resource: str | None = None
    code: int = 0
    latency: float = 0.0
    probability: float = 1.0
    times: int | None = None
    message: str = "injected by kubesim"

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {self.probability}")
        if self.code and not 400 <= self.code <= 599:
            raise ValueError(f"code must be an HTTP error code (400-599), got {self.code}")
        if self.latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {self.latency}")


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def add(self, rule: FaultRule) -> None:
        self.rules.append(rule)

    def clear(self) -> None:
        self.rules.clear()

    def match(self, verb: str, resource: str) -> FaultRule | None:
        """The first rule that fires for this request, consuming one of its `times`."""
        for rule in list(self.rules):
            if rule.verb not in (None, verb) or rule.resource not in (None, resource):
                continue
            if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
            return rule
        return None
