"""Whether a reconcile must look for owned objects its render no longer holds.

Looking costs a list per kind the render dropped, and after a spec change that is mostly a list
of PodDisruptionBudgets to find none. The status tells what the cluster holds: a reconcile
writes `observedGeneration` only after it applied that generation's whole render and pruned
what the render before it held beyond it. So with `observedGeneration` one behind the spec, the
cluster holds the render of `observedGeneration` (kept by this replica if it rendered it) and at
most parts of the current render (a reconcile of it that stopped before its status write); when
every object of that earlier render is in the current one, there is nothing to prune. Anything
less known (a generation skipped, an earlier render this replica never made, a retirement that
drops objects) is looked for, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _names(render: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(obj["kind"], obj["metadata"]["name"]) for obj in render}


def must_prune(
    *,
    observed: int | None,
    generation: int,
    reshaped: bool,
    retired: bool,
    previous: tuple[int, Sequence[dict[str, Any]]] | None,
    rendered: Sequence[dict[str, Any]],
) -> bool:
    """`observed`: the status's `observedGeneration`; `previous`: the generation and render
    this replica kept from before this one; `retired`: the version is retired now or was."""
    if observed is None:
        return False  # a first reconcile: every object of this uid is from its own render
    if reshaped:
        return True
    if observed == generation:
        return False  # realized and pruned already
    if retired or previous is None or previous[0] != observed or generation != observed + 1:
        return True
    return not _names(previous[1]) <= _names(rendered)
