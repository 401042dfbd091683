"""Operator commands on a rollout, as `kubectl` can give them: two annotations on the version.

    kubectl annotate gv orders-v2 --overwrite \\
        gati.dev/rollout-action=promote gati.dev/rollout-action-nonce="$(date +%s%N)"

`gati-operator rollout <action>` writes the same pair. The contract:
- `gati.dev/rollout-action` is one of `promote`, `pause`, `resume`, `abort`, `retry`.
- `gati.dev/rollout-action-nonce` is any value not used before on this version. An annotation
  that did not change is invisible to a watch, and the same annotation is delivered again on
  every later change of the object, so the nonce is what tells a new request from an old one:
  timescape records the nonce it took (`VersionState.handled_action`) in the same status write
  as the action's effect, and a request is taken only when its nonce differs. Re-annotating with
  the same nonce is therefore a no-op, and `promote` twice with two nonces promotes twice.
- A request without a nonce, or with an unknown action, is refused with `ActionAnnotationError`
  naming the fix; the service records the refusal (`rollout.refuse_action`) so it is reported
  once, not on every event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

ACTION_ANNOTATION: Final = "gati.dev/rollout-action"
NONCE_ANNOTATION: Final = "gati.dev/rollout-action-nonce"
_MISSING_NONCE: Final = "missing-nonce:"
"""Stands in for the nonce of a refused request without one, so it is refused only once."""


class RolloutAction(StrEnum):
    PROMOTE = "promote"
    """End the current step's pause now (or the wait of a step without pause); clears a pause."""
    PAUSE = "pause"
    """Hold the current step past its deadline; health checks and rollback still apply."""
    RESUME = "resume"
    """Lift a pause; the step's pause starts over, so the held weight is observed in full."""
    ABORT = "abort"
    """Roll the in-flight version back now, as a failed health gate would."""
    RETRY = "retry"
    """Start a rolled-back version's rollout again from the health gate before the first step."""


@dataclass(frozen=True)
class ActionRequest:
    action: RolloutAction
    nonce: str


class ActionAnnotationError(ValueError):
    """The annotations ask for something timescape cannot do; `nonce` identifies the request."""

    def __init__(self, message: str, nonce: str) -> None:
        super().__init__(message)
        self.nonce = nonce


def requested_action(
    annotations: Mapping[str, str], handled_nonce: str | None
) -> ActionRequest | None:
    """The action the annotations ask for that was not taken yet, None when there is none."""
    text = annotations.get(ACTION_ANNOTATION)
    if text is None:
        return None
    nonce = annotations.get(NONCE_ANNOTATION) or f"{_MISSING_NONCE}{text}"
    if nonce == handled_nonce:
        return None
    if nonce.startswith(_MISSING_NONCE):
        raise ActionAnnotationError(
            f"{ACTION_ANNOTATION}={text} needs {NONCE_ANNOTATION} set to a value not used before "
            f'on this version, such as {NONCE_ANNOTATION}="$(date +%s%N)"',
            nonce,
        )
    try:
        action = RolloutAction(text.strip().lower())
    except ValueError:
        allowed = ", ".join(action.value for action in RolloutAction)
        raise ActionAnnotationError(
            f"{ACTION_ANNOTATION}={text!r} is not an action; use one of {allowed}", nonce
        ) from None
    return ActionRequest(action, nonce)
