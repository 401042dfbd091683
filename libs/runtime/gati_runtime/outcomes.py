"""What a handler tells the consumer loop, and what the loop then tells JetStream.

Handlers return a verdict about their work (done, retry later, give up); turning that into an
ack, a delayed nak or a term is pure arithmetic on the delivery count, kept here so it can be
tested exhaustively without a server. JetStream applies a consumer's `backoff` only to ack
timeouts, never to a nak, so the retry delay is computed here and passed with the nak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final


@dataclass(frozen=True)
class Done:
    """The effect happened (or had already happened): acknowledge the message."""


@dataclass(frozen=True)
class Retry:
    """A transient failure: deliver again after `after`, or after the loop's backoff if None."""

    reason: str
    after: timedelta | None = None


@dataclass(frozen=True)
class Fail:
    """Retrying cannot help (bad input, forbidden): stop now and report `reason`."""

    reason: str


Outcome = Done | Retry | Fail
DONE: Final = Done()


@dataclass(frozen=True)
class Backoff:
    """Exponential: `base`, twice `base`, four times `base`... capped at `cap`."""

    base: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, attempt: int) -> timedelta:
        """Delay before the delivery that follows delivery number `attempt` (1-based)."""
        exponent = max(attempt - 1, 0)
        # Compare exponents before multiplying so a large attempt count cannot overflow.
        if exponent >= 32 or self.base * (1 << exponent) >= self.cap:
            return self.cap
        return self.base * (1 << exponent)


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nak:
    delay: timedelta
    reason: str


@dataclass(frozen=True)
class Term:
    reason: str


Settlement = Ack | Nak | Term


def settle(outcome: Outcome, *, attempt: int, max_deliver: int, backoff: Backoff) -> Settlement:
    """The last allowed delivery ends in `Term`, so a message never silently stops arriving."""
    if isinstance(outcome, Done):
        return Ack()
    if isinstance(outcome, Fail):
        return Term(outcome.reason)
    if attempt >= max_deliver:
        return Term(f"gave up after {attempt} deliveries: {outcome.reason}")
    delay = outcome.after if outcome.after is not None else backoff.delay(attempt)
    return Nak(delay, outcome.reason)
